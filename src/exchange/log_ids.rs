//! The ids every log line about an exchange carries, and the one macro that
//! writes them, so no line can forget one.

use opentelemetry::trace::{SpanId, TraceId};

use crate::context::CorrelationId;

/// Correlation id, trace id and span id (the SERVER span) of an exchange,
/// owned so a task that outlives the exchange (an upgraded connection's
/// tunnel) can log with them.
#[derive(Debug, Clone)]
pub struct LogIds {
    pub correlation_id: CorrelationId,
    pub trace: Option<(TraceId, SpanId)>,
}

/// A `tracing` event about an exchange: `exchange_event!(Level::WARN, &ids,
/// error_type = "connect", "message")` adds `correlation_id`, `trace_id` and
/// `span_id` to the given fields. The ids are formatted only when the event
/// is enabled.
macro_rules! exchange_event {
    ($level:expr, $ids:expr, $($fields:tt)+) => {{
        let ids: &$crate::exchange::LogIds = $ids;
        tracing::event!(
            $level,
            correlation_id = ids.correlation_id.as_str(),
            trace_id = ids.trace.map(|(trace, _)| tracing::field::display(trace)),
            span_id = ids.trace.map(|(_, span)| tracing::field::display(span)),
            $($fields)+
        )
    }};
}

pub(crate) use exchange_event;

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;
    use crate::telemetry::logging::capture_json_lines;

    #[test]
    fn every_line_carries_the_three_ids() {
        let (correlation_id, _) = CorrelationId::from_headers(&HeaderMap::new(), &[]);
        let trace_id = TraceId::from(0x0af7651916cd43dd8448eb211c80319c_u128);
        let span_id = SpanId::from(0xb7ad6b7169203331_u64);
        let ids = LogIds {
            correlation_id: correlation_id.clone(),
            trace: Some((trace_id, span_id)),
        };
        let captured = capture_json_lines(|| {
            exchange_event!(tracing::Level::WARN, &ids, error_type = "connect", "failed");
        });
        let line: serde_json::Value = serde_json::from_slice(&captured).unwrap();
        assert_eq!(line["correlation_id"], correlation_id.as_str());
        assert_eq!(line["trace_id"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(line["span_id"], "b7ad6b7169203331");
        assert_eq!(line["error_type"], "connect");
        assert_eq!(line["message"], "failed");
    }
}
