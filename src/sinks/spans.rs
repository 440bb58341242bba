//! Ends the exchange's spans from its [`Completion`]: status codes, `error.type`
//! and span status per the HTTP semantic conventions. The server span ends
//! when the response body ends, so a 40 s stream is a 40 s span.

use std::time::SystemTime;

use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry::KeyValue;

use super::Sink;
use crate::exchange::{Completion, Outcome};

/// `error.type` of a client that left before the response ended.
pub const CLIENT_ABORT: &str = "client_abort";

pub struct SpanSink;

impl Sink for SpanSink {
    fn record(&self, c: &Completion) {
        let Some(trace) = &c.exchange.trace else {
            return;
        };
        let end = SystemTime::now();

        if let Some(client) = &trace.client {
            let span = client.span();
            if span.is_recording() {
                let error = match (c.error_kind(), c.upstream_status) {
                    (Some(kind), _) if kind.side() == crate::proxy::ErrorSide::Upstream => {
                        Some(kind.as_str().to_owned())
                    }
                    (_, Some(status)) if status >= 400 => Some(status.to_string()),
                    _ => None,
                };
                if let Some(status) = c.upstream_status {
                    span.set_attribute(KeyValue::new(
                        "http.response.status_code",
                        i64::from(status),
                    ));
                }
                if let Some(error) = error {
                    span.set_status(Status::error(error.clone()));
                    span.set_attribute(KeyValue::new("error.type", error));
                }
            }
            span.end_with_timestamp(end);
        }

        let span = trace.server.span();
        if span.is_recording() {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(c.status),
            ));
            let error = match (c.outcome, c.error_kind()) {
                (Outcome::ClientAbort, _) => Some(CLIENT_ABORT.to_owned()),
                (_, Some(kind)) => Some(kind.as_str().to_owned()),
                _ if c.status >= 500 => Some(c.status.to_string()),
                _ => None,
            };
            if let Some(error) = error {
                span.set_status(Status::error(error.clone()));
                span.set_attribute(KeyValue::new("error.type", error));
            }
        }
        span.end_with_timestamp(end);
    }
}
