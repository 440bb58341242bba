//! The access log: one `request completed` line per exchange, written when the
//! response body ends, with the fields Loki queries (DESIGN.md, "Logs").

use std::sync::Arc;

use super::Sink;
use crate::exchange::Completion;
use crate::redact::Redactor;

pub struct AccessLog {
    redactor: Arc<Redactor>,
}

impl AccessLog {
    pub fn new(redactor: Arc<Redactor>) -> Self {
        Self { redactor }
    }
}

impl Sink for AccessLog {
    fn record(&self, c: &Completion) {
        if !tracing::enabled!(target: "access", tracing::Level::INFO) {
            return;
        }
        let e = &c.exchange;
        let genai = c.genai.as_ref();
        let ids = e.trace_ids();
        let (trace_id, span_id) = match &ids {
            Some((t, s)) => (Some(t.as_str()), Some(s.as_str())),
            None => (None, None),
        };
        // Microsecond resolution, without float noise in the log line.
        let millis = |d: std::time::Duration| (d.as_micros() as f64) / 1e3;
        tracing::info!(
            target: "access",
            correlation_id = e.correlation_id.as_str(),
            trace_id,
            span_id,
            method = e.method.as_str(),
            path = %self.redactor.target(e.target.as_str()),
            handler = &*e.handler.name,
            status = c.status,
            duration_ms = millis(c.duration),
            upstream_ms = c.upstream_headers.map(millis),
            bytes_in = c.bytes_in,
            bytes_out = c.bytes_out,
            client_address = %e.client_addr.ip(),
            protocol = ?e.version,
            error_type = c.error_kind().map(|k| k.as_str()),
            model = genai.and_then(|g| g.model()),
            input_tokens = genai.and_then(|g| g.usage.input_tokens),
            output_tokens = genai.and_then(|g| g.usage.output_tokens),
            ttft_ms = genai.and_then(|g| g.time_to_first_token).map(millis),
            "request completed"
        );
    }
}
