//! The access log: one `request completed` line per exchange, written when the
//! response body ends, with the fields Loki queries (DESIGN.md, "Logs").
//!
//! In the binary the line is serialized once, straight from the completion,
//! and handed to each JSON writer (stdout, the log file): no `tracing` event,
//! no per-layer formatting. For the pretty stdout, and for the library used
//! on its own, it is a `tracing` event with the same fields. With the `otlp`
//! exporter it is also an OpenTelemetry log record built from the same
//! fields (typed, with the exchange's ids as its trace context), only then.

mod timestamp;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::logs::{AnyValue, LogRecord as _};
use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
use opentelemetry_sdk::logs::SdkLogRecord;
use serde::Serialize;

use crate::exchange::Sink;
use crate::exchange::{protocol_log_name, Completion};
use crate::redact::Redactor;
use crate::telemetry::access_target::ACCESS_TARGET;
use crate::telemetry::logging::AccessOutputs;
use crate::telemetry::otlp_logs::LogRecords;

pub struct AccessLog {
    redactor: Arc<Redactor>,
    outputs: AccessOutputs,
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
    pub fn new(redactor: Arc<Redactor>, outputs: AccessOutputs) -> Self {
        Self { redactor, outputs }
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
        for writer in &self.outputs.json_writers {
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

/// The line as an OpenTelemetry log record: `level` its severity, `message`
/// its body, `timestamp` its time, `target` its scope name, the ids its
/// trace context, and every other field an attribute of the field's type.
fn otlp_record(
    records: &LogRecords,
    line: &Line<'_>,
    at: SystemTime,
    trace: Option<(TraceId, SpanId, TraceFlags)>,
) -> SdkLogRecord {
    let mut record = records.record(at, tracing::Level::INFO);
    record.set_target(line.target);
    record.set_body(AnyValue::from(line.message));
    if let Some((trace_id, span_id, flags)) = trace {
        record.set_trace_context(trace_id, span_id, Some(flags));
    }
    let text = |value: &str| AnyValue::from(value.to_owned());
    record.add_attribute("correlation_id", text(line.correlation_id));
    record.add_attribute("method", text(line.method));
    record.add_attribute("path", text(line.path));
    record.add_attribute("handler", text(line.handler));
    record.add_attribute("status", AnyValue::Int(line.status.into()));
    record.add_attribute("duration_ms", AnyValue::Double(line.duration_ms));
    if let Some(ms) = line.upstream_ms {
        record.add_attribute("upstream_ms", AnyValue::Double(ms));
    }
    record.add_attribute("bytes_in", int(line.bytes_in));
    record.add_attribute("bytes_out", int(line.bytes_out));
    record.add_attribute("client_address", text(line.client_address));
    record.add_attribute("protocol", AnyValue::from(line.protocol));
    if let Some(error_type) = line.error_type {
        record.add_attribute("error_type", AnyValue::from(error_type));
    }
    if let Some(model) = line.model {
        record.add_attribute("model", text(model));
    }
    if let Some(tokens) = line.input_tokens {
        record.add_attribute("input_tokens", int(tokens));
    }
    if let Some(tokens) = line.output_tokens {
        record.add_attribute("output_tokens", int(tokens));
    }
    if let Some(ms) = line.ttft_ms {
        record.add_attribute("ttft_ms", AnyValue::Double(ms));
    }
    record
}

/// OTLP integers are signed: a count beyond `i64::MAX` (never seen) saturates.
fn int(value: u64) -> AnyValue {
    AnyValue::Int(i64::try_from(value).unwrap_or(i64::MAX))
}

impl Sink for AccessLog {
    fn record(&self, c: &Completion) {
        let at = SystemTime::now();
        let e = &c.exchange;
        let genai = c.genai.as_ref();
        let ids = e.trace_ids();
        let path = self.redactor.target(e.target.as_str());
        let mut timestamp = [0u8; timestamp::LEN];
        let line = Line {
            timestamp: timestamp::rfc3339_micros(at, &mut timestamp),
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
        if !self.outputs.json_writers.is_empty() {
            self.write(&line);
        }
        if self.outputs.event {
            Self::event(&line);
        }
        if let Some(records) = &self.outputs.otlp {
            let trace = e.trace.as_ref().map(|t| {
                let flags = if t.is_sampled() {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::default()
                };
                (t.trace_id(), t.span_id(), flags)
            });
            records.push(otlp_record(records, &line, at, trace));
        }
    }
}

#[cfg(test)]
mod tests {
    //! The line has three renderings: serialized once for the JSON writers,
    //! as a `tracing` event (the pretty format, the library used on its
    //! own), and as an OTLP log record. They must say the same.

    use std::sync::atomic::AtomicU64;
    use std::time::Duration;

    use opentelemetry::logs::Severity;
    use serde_json::{json, Map, Value};

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

    /// The record's content in the JSON line's terms.
    fn as_json(record: &SdkLogRecord) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("level".into(), json!(record.severity_text().unwrap()));
        let body = match record.body() {
            Some(AnyValue::String(text)) => text.as_str().to_owned(),
            other => panic!("body {other:?}"),
        };
        map.insert("message".into(), json!(body));
        for (key, value) in record.attributes_iter() {
            let value = match value {
                AnyValue::String(text) => json!(text.as_str()),
                AnyValue::Int(int) => json!(int),
                AnyValue::Double(double) => json!(double),
                other => panic!("{key}: {other:?}"),
            };
            map.insert(key.to_string(), value);
        }
        if let Some(trace) = record.trace_context() {
            map.insert("trace_id".into(), json!(trace.trace_id.to_string()));
            map.insert("span_id".into(), json!(trace.span_id.to_string()));
        }
        map.insert("target".into(), json!(record.target().unwrap()));
        map
    }

    #[test]
    fn the_record_says_what_the_line_says_typed() {
        let (records, _pending) = LogRecords::new(4, Arc::new(AtomicU64::new(0)));
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        for genai in [false, true] {
            let line = line(genai);
            let trace = (
                TraceId::from_hex(line.trace_id.unwrap()).unwrap(),
                SpanId::from_hex(line.span_id.unwrap()).unwrap(),
                TraceFlags::SAMPLED,
            );
            let record = otlp_record(&records, &line, at, Some(trace));
            let serialized = fields(&AccessLog::serialize(&line).unwrap());
            let mut ours = as_json(&record);
            // Same keys and values, whatever the order.
            let mut theirs = serialized.clone();
            ours.sort_keys();
            theirs.sort_keys();
            assert_eq!(ours, theirs, "genai: {genai}");
            assert_eq!(record.severity_number(), Some(Severity::Info));
            assert_eq!(record.timestamp(), Some(at));
            assert_eq!(record.observed_timestamp(), Some(at));
            let context = record.trace_context().unwrap();
            assert_eq!(context.trace_flags, Some(TraceFlags::SAMPLED));
            assert!(
                record
                    .attributes_iter()
                    .all(|(key, _)| !["trace_id", "span_id", "message", "level"]
                        .contains(&key.as_str())),
                "the record's own fields are not repeated as attributes"
            );
            let typed = |key: &str| {
                record
                    .attributes_iter()
                    .find(|(k, _)| k.as_str() == key)
                    .map(|(_, v)| v.clone())
            };
            assert_eq!(typed("status"), Some(AnyValue::Int(502)));
            assert_eq!(typed("duration_ms"), Some(AnyValue::Double(12.5)));
            assert_eq!(typed("bytes_in"), Some(AnyValue::Int(42)));
        }
    }
}
