//! RED metrics of the exchanges (DESIGN.md, "Metrics").

use std::sync::OnceLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::buckets;
use super::labels::*;
use super::status_table::StatusTable;
use crate::context::RouteTable;
use crate::error::{ErrorSide, ProxyErrorKind};
use crate::exchange::KnownMethod;

type Timing = HistogramWithExemplars<TraceExemplar>;

fn timing() -> Timing {
    HistogramWithExemplars::new(buckets::DURATION_SECONDS.iter().copied())
}

fn sizes() -> Histogram {
    Histogram::new(buckets::size_bytes())
}

/// Handles of one `(method, handler)` pair, each created on first use so
/// the exposition holds only series that have seen traffic.
pub struct RouteHandles {
    first_byte: OnceLock<Timing>,
    by_status: StatusTable<(Counter, Timing)>,
    labels: RouteLabels,
}

/// Handles of one handler. The in-flight gauge exists from the start, so a
/// dashboard shows 0 rather than nothing.
pub struct HandlerHandles {
    pub in_flight: Gauge,
    sizes: OnceLock<(Histogram, Histogram)>,
    upstream_by_status: StatusTable<Timing>,
    /// By `ProxyErrorKind as usize`: `upstream_errors_total` for the
    /// upstream's failures, `sidecar_proxy_errors_total` for the rest.
    errors: [OnceLock<Counter>; ProxyErrorKind::COUNT],
    labels: HandlerLabels,
}

/// The handles of one route table: rebuilt when a reload changes the routes,
/// against the same families, so series of unchanged routes continue.
pub struct HttpHandles {
    routes: Vec<RouteHandles>,
    handlers: Vec<HandlerHandles>,
}

type TimingFamily<L> = Family<L, Timing, fn() -> Timing>;
type SizeFamily = Family<HandlerLabels, Histogram, fn() -> Histogram>;

pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: TimingFamily<RequestLabels>,
    first_byte: TimingFamily<RouteLabels>,
    request_size: SizeFamily,
    response_size: SizeFamily,
    upstream_duration: TimingFamily<UpstreamLabels>,
    upstream_errors: Family<UpstreamErrorLabels, Counter>,
    proxy_errors: Family<UpstreamErrorLabels, Counter>,
    in_flight: Family<HandlerLabels, Gauge>,
}

impl HttpHandles {
    /// Each handler's in-flight gauge, by handler index.
    pub fn in_flight_gauges(&self) -> Vec<Gauge> {
        self.handlers.iter().map(|h| h.in_flight.clone()).collect()
    }

    /// The handles of a handler (by its route-table index).
    pub fn handler(&self, index: usize) -> &HandlerHandles {
        &self.handlers[index.min(self.handlers.len() - 1)]
    }

    /// The handles of a `(method, handler)` pair.
    pub fn route(&self, method: KnownMethod, handler_index: usize) -> &RouteHandles {
        let handlers = self.handlers.len();
        &self.routes[method.index() * handlers + handler_index.min(handlers - 1)]
    }
}

impl HttpMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let duration: TimingFamily<RequestLabels> = Family::new_with_constructor(timing);
        let first_byte: TimingFamily<RouteLabels> = Family::new_with_constructor(timing);
        let in_flight = Family::<HandlerLabels, Gauge>::default();
        let request_size: SizeFamily = Family::new_with_constructor(sizes);
        let response_size: SizeFamily = Family::new_with_constructor(sizes);
        let upstream_duration: TimingFamily<UpstreamLabels> = Family::new_with_constructor(timing);
        let upstream_errors = Family::<UpstreamErrorLabels, Counter>::default();
        let proxy_errors = Family::<UpstreamErrorLabels, Counter>::default();

        registry.register(
            "http_requests",
            "Requests answered, by method, handler and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from request arrival to the end of the response body",
            duration.clone(),
        );
        registry.register(
            "http_response_first_byte_seconds",
            "Time from request arrival to the response headers",
            first_byte.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "Exchanges in progress",
            in_flight.clone(),
        );
        registry.register(
            "http_request_size_bytes",
            "Request body sizes",
            request_size.clone(),
        );
        registry.register(
            "http_response_size_bytes",
            "Response body sizes",
            response_size.clone(),
        );
        registry.register(
            "upstream_request_duration_seconds",
            "Time from sending upstream to the end of the upstream's response body",
            upstream_duration.clone(),
        );
        registry.register(
            "upstream_errors",
            "Failed upstream exchanges, by error type",
            upstream_errors.clone(),
        );
        registry.register(
            "sidecar_proxy_errors",
            "Exchanges the proxy ended itself, not the upstream (overloaded, \
             request_too_large, headers_too_large, bad_request, drain_timeout, internal)",
            proxy_errors.clone(),
        );
        Self {
            requests,
            duration,
            first_byte,
            request_size,
            response_size,
            upstream_duration,
            upstream_errors,
            proxy_errors,
            in_flight,
        }
    }

    /// Handles for the handlers of `routes`.
    pub fn handles(&self, routes: &RouteTable) -> HttpHandles {
        let handlers = routes
            .handlers()
            .map(|h| {
                let labels = HandlerLabels {
                    handler: h.name.clone(),
                };
                HandlerHandles {
                    in_flight: self.in_flight.get_or_create_owned(&labels),
                    sizes: OnceLock::new(),
                    upstream_by_status: StatusTable::new(),
                    errors: Default::default(),
                    labels,
                }
            })
            .collect();
        let routes = KnownMethod::ALL
            .iter()
            .flat_map(|method| {
                routes
                    .handlers()
                    .map(move |h| (method.label(), h.name.clone()))
            })
            .map(|(method, handler)| RouteHandles {
                first_byte: OnceLock::new(),
                by_status: StatusTable::new(),
                labels: RouteLabels { method, handler },
            })
            .collect();
        HttpHandles { routes, handlers }
    }

    /// `http_requests_total` and `http_request_duration_seconds` for one status.
    pub fn by_status<'a>(&self, route: &'a RouteHandles, status: u16) -> &'a (Counter, Timing) {
        route.by_status.get(status, |status| {
            let labels = RequestLabels {
                method: route.labels.method,
                handler: route.labels.handler.clone(),
                status,
            };
            (
                self.requests.get_or_create_owned(&labels),
                self.duration.get_or_create_owned(&labels),
            )
        })
    }

    /// `http_response_first_byte_seconds` of a `(method, handler)` pair.
    pub fn first_byte<'a>(&self, route: &'a RouteHandles) -> &'a Timing {
        route
            .first_byte
            .get_or_init(|| self.first_byte.get_or_create_owned(&route.labels))
    }

    /// `http_request_size_bytes` and `http_response_size_bytes` of a handler.
    pub fn sizes<'a>(&self, handler: &'a HandlerHandles) -> &'a (Histogram, Histogram) {
        handler.sizes.get_or_init(|| {
            (
                self.request_size.get_or_create_owned(&handler.labels),
                self.response_size.get_or_create_owned(&handler.labels),
            )
        })
    }

    /// `upstream_request_duration_seconds` of a handler for one upstream status.
    pub fn upstream<'a>(&self, handler: &'a HandlerHandles, status: u16) -> &'a Timing {
        handler.upstream_by_status.get(status, |status| {
            self.upstream_duration.get_or_create_owned(&UpstreamLabels {
                handler: handler.labels.handler.clone(),
                status,
            })
        })
    }

    /// The counter of a failure: `upstream_errors_total` for the
    /// upstream's, `sidecar_proxy_errors_total` for the proxy's own.
    pub fn error<'a>(&self, handler: &'a HandlerHandles, kind: ProxyErrorKind) -> &'a Counter {
        handler.errors[kind as usize].get_or_init(|| {
            let family = match kind.side() {
                ErrorSide::Upstream => &self.upstream_errors,
                ErrorSide::Downstream | ErrorSide::Internal => &self.proxy_errors,
            };
            family.get_or_create_owned(&UpstreamErrorLabels {
                handler: handler.labels.handler.clone(),
                error_type: kind.as_str(),
            })
        })
    }
}
