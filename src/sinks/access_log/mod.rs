//! The access log: one `request completed` line per exchange, written when the
//! response body ends, with the fields Loki queries (DESIGN.md, "Logs").
//!
//! In the binary the line is serialized once, straight from the completion,
//! and handed to each JSON writer (stdout, the log file): no `tracing` event,
//! no per-layer formatting. Without writers (the library used on its own) it
//! is a `tracing` event with the same fields.

mod timestamp;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tracing_appender::non_blocking::NonBlocking;

use crate::exchange::Sink;
use crate::exchange::{protocol_log_name, Completion};
use crate::redact::Redactor;
use crate::telemetry::logging::ACCESS_TARGET;

pub struct AccessLog {
    redactor: Arc<Redactor>,
    writers: Vec<NonBlocking>,
}

/// The access line's fields, in the order the JSON formatter writes them.
#[derive(Serialize)]
struct Line<'a> {
    timestamp: &'a str,
    level: &'static str,
    message: &'static str,
    correlation_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    span_id: Option<&'a str>,
    method: &'a str,
    path: &'a str,
    handler: &'a str,
    status: u16,
    duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_ms: Option<f64>,
    bytes_in: u64,
    bytes_out: u64,
    client_address: &'a str,
    protocol: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttft_ms: Option<f64>,
    target: &'static str,
}

/// Microsecond resolution, without float noise in the log line.
fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1e3
}

impl AccessLog {
    /// `writers` take the serialized line; empty means "emit a tracing event".
    pub fn new(redactor: Arc<Redactor>, writers: Vec<NonBlocking>) -> Self {
        Self { redactor, writers }
    }

    /// The line as the JSON writers get it.
    fn serialize(line: &Line<'_>) -> Option<Vec<u8>> {
        let mut buf = Vec::with_capacity(512);
        serde_json::to_writer(&mut buf, line).ok()?;
        buf.push(b'\n');
        Some(buf)
    }

    fn write(&self, line: &Line<'_>) {
        let Some(buf) = Self::serialize(line) else {
            return;
        };
        for writer in &self.writers {
            // Non-blocking and lossy: a full queue drops the line and counts it.
            let _ = writer.clone().write_all(&buf);
        }
    }

    fn event(line: &Line<'_>) {
        tracing::info!(
            target: ACCESS_TARGET,
            correlation_id = line.correlation_id,
            trace_id = line.trace_id,
            span_id = line.span_id,
            method = line.method,
            path = line.path,
            handler = line.handler,
            status = line.status,
            duration_ms = line.duration_ms,
            upstream_ms = line.upstream_ms,
            bytes_in = line.bytes_in,
            bytes_out = line.bytes_out,
            client_address = line.client_address,
            protocol = line.protocol,
            error_type = line.error_type,
            model = line.model,
            input_tokens = line.input_tokens,
            output_tokens = line.output_tokens,
            ttft_ms = line.ttft_ms,
            "request completed"
        );
    }
}

impl Sink for AccessLog {
    fn record(&self, c: &Completion) {
        if !tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO) {
            return;
        }
        let e = &c.exchange;
        let genai = c.genai.as_ref();
        let ids = e.trace_ids();
        let path = self.redactor.target(e.target.as_str());
        let mut timestamp = [0u8; timestamp::LEN];
        let line = Line {
            timestamp: timestamp::rfc3339_micros(SystemTime::now(), &mut timestamp),
            level: "INFO",
            message: "request completed",
            correlation_id: e.correlation_id.as_str(),
            trace_id: ids.as_ref().map(|i| i.0.as_str()),
            span_id: ids.as_ref().map(|i| i.1.as_str()),
            method: e.method.as_str(),
            path: &path,
            handler: &e.handler.name,
            status: c.status,
            duration_ms: millis(c.duration),
            upstream_ms: c.upstream_headers.map(millis),
            bytes_in: c.bytes_in,
            bytes_out: c.bytes_out,
            client_address: e.client.ip.to_str().unwrap_or_default(),
            protocol: protocol_log_name(e.version),
            error_type: c.error_kind().map(|k| k.as_str()),
            model: genai.and_then(|g| g.model()),
            input_tokens: genai.and_then(|g| g.usage.input_tokens),
            output_tokens: genai.and_then(|g| g.usage.output_tokens),
            ttft_ms: genai.and_then(|g| g.time_to_first_token).map(millis),
            target: ACCESS_TARGET,
        };
        if self.writers.is_empty() {
            Self::event(&line);
        } else {
            self.write(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The line has two renderings: serialized once for the JSON writers, and
    //! as a `tracing` event where there are none (the pretty format, the
    //! library used on its own). They must say the same.

    use super::*;
    use crate::telemetry::logging::capture_json_lines;

    fn fields(json: &[u8]) -> serde_json::Map<String, serde_json::Value> {
        let mut map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(json).unwrap();
        map.remove("timestamp");
        map
    }

    fn line(genai: bool) -> Line<'static> {
        Line {
            timestamp: "2026-12-01T10:00:00.000000Z",
            level: "INFO",
            message: "request completed",
            correlation_id: "req-1",
            trace_id: Some("0af7651916cd43dd8448eb211c80319c"),
            span_id: Some("b7ad6b7169203331"),
            method: "POST",
            path: "/api/chat?token=[REDACTED]",
            handler: "/api/chat",
            status: 502,
            duration_ms: 12.5,
            upstream_ms: Some(3.25),
            bytes_in: 42,
            bytes_out: 7,
            client_address: "127.0.0.1",
            protocol: "HTTP/1.1",
            error_type: Some("connect"),
            model: genai.then_some("llama3.2:1b"),
            input_tokens: genai.then_some(5),
            output_tokens: genai.then_some(8),
            ttft_ms: genai.then_some(80.5),
            target: ACCESS_TARGET,
        }
    }

    #[test]
    fn the_event_and_the_serialized_line_agree() {
        for genai in [false, true] {
            let line = line(genai);
            let event = fields(&capture_json_lines(|| AccessLog::event(&line)));
            let serialized = fields(&AccessLog::serialize(&line).unwrap());
            assert_eq!(event, serialized, "genai: {genai}");
        }
    }
}
