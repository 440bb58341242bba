//! Records the RED metrics of a completed exchange into pre-resolved handles.

use std::sync::Arc;

use super::Sink;
use crate::exchange::Completion;
use crate::metrics::{method_index, Metrics, TraceExemplar};

pub struct MetricsSink {
    metrics: Arc<Metrics>,
}

impl MetricsSink {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl Sink for MetricsSink {
    fn record(&self, c: &Completion) {
        let http = &self.metrics.http;
        let e = &c.exchange;
        let exemplar = e
            .trace
            .as_ref()
            .filter(|t| t.is_sampled())
            .map(|t| TraceExemplar {
                trace_id: t.trace_id().to_string(),
            });

        let route = http.route(method_index(&e.method), e.handler.index);
        let (requests, duration) = http.by_status(route, c.status);
        requests.inc();
        duration.observe(c.duration.as_secs_f64(), exemplar.clone(), None);
        if let Some(first_byte) = c.first_byte {
            http.first_byte(route)
                .observe(first_byte.as_secs_f64(), exemplar.clone(), None);
        }

        let handler = http.handler(e.handler.index);
        handler.in_flight.dec();
        let (request_size, response_size) = http.sizes(handler);
        request_size.observe(c.bytes_in as f64);
        response_size.observe(c.bytes_out as f64);
        if let (Some(status), Some(upstream)) = (c.upstream_status, c.upstream_duration) {
            http.upstream(handler, status)
                .observe(upstream.as_secs_f64(), exemplar, None);
        }
        if let Some(counter) = c
            .error_kind()
            .and_then(|kind| http.upstream_error(handler, kind))
        {
            counter.inc();
        }
    }
}
