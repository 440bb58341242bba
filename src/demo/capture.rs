//! In-memory sinks for the demo: log lines and spans kept so they can be
//! printed after the requests, in place of stdout and an OTLP collector.

use std::io::Write;
use std::sync::{Arc, Mutex};

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tracing_subscriber::fmt::MakeWriter;

/// Log lines kept in memory so the demo can print them after the requests.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Spans "exported" into memory.
#[derive(Clone, Default, Debug)]
pub struct CapturedSpans(Arc<Mutex<Vec<SpanData>>>);

impl CapturedSpans {
    /// One line per span, server spans first within each trace.
    pub fn summaries(&self) -> Vec<String> {
        let mut spans = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        spans.sort_by_key(|s| (s.start_time, s.span_kind != SpanKind::Server));
        spans.iter().map(summary).collect()
    }

    /// The trace id of every span, as lower-case hex.
    pub fn trace_ids(&self) -> Vec<String> {
        let spans = self.0.lock().unwrap_or_else(|e| e.into_inner());
        spans
            .iter()
            .map(|s| s.span_context.trace_id().to_string())
            .collect()
    }

    /// The spans of each trace, traces in start order, server span first.
    pub fn by_trace(&self) -> Vec<Vec<SpanData>> {
        let mut spans = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        spans.sort_by_key(|s| (s.start_time, s.span_kind != SpanKind::Server));
        let mut traces: Vec<Vec<SpanData>> = Vec::new();
        for span in spans {
            let trace = span.span_context.trace_id();
            match traces
                .iter_mut()
                .find(|t| t[0].span_context.trace_id() == trace)
            {
                Some(t) => t.push(span),
                None => traces.push(vec![span]),
            }
        }
        traces
    }
}

fn summary(span: &SpanData) -> String {
    let kind = if span.span_kind == SpanKind::Server {
        "SERVER"
    } else {
        "CLIENT"
    };
    let millis = span
        .end_time
        .duration_since(span.start_time)
        .unwrap_or_default()
        .as_secs_f64()
        * 1e3;
    let status = match &span.status {
        Status::Error { description } => format!(" ERROR({description})"),
        _ => String::new(),
    };
    let attributes: Vec<String> = span
        .attributes
        .iter()
        .map(|kv| format!("{}={}", kv.key, kv.value))
        .collect();
    format!(
        "{kind} {:<26} trace={} span={} parent={} {millis:>7.1} ms{status}\n       {}",
        span.name,
        span.span_context.trace_id(),
        span.span_context.span_id(),
        span.parent_span_id,
        attributes.join(" ")
    )
}

impl SpanExporter for CapturedSpans {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(batch);
        std::future::ready(Ok(()))
    }
}
