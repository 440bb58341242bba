//! Records the RED and GenAI metrics of a completed exchange into
//! pre-resolved handles.

use std::sync::Arc;

use crate::exchange::Sink;
use crate::exchange::{Completion, GenAiCompletion};
use crate::metrics::{
    HttpHandles, Metrics, ModelLabel, OperationLabels, TokenLabels, ToolCallLabels, TraceExemplar,
};

pub struct MetricsSink {
    metrics: Arc<Metrics>,
    /// The handles of the route table this sink's exchanges were classified by.
    handles: Arc<HttpHandles>,
}

impl MetricsSink {
    pub fn new(metrics: Arc<Metrics>, handles: Arc<HttpHandles>) -> Self {
        Self { metrics, handles }
    }

    fn record_genai(&self, c: &Completion, g: &GenAiCompletion, exemplar: Option<&TraceExemplar>) {
        let metrics = &self.metrics.genai;
        let model = metrics.models.label(g.model().unwrap_or("unknown"));
        let operation = g.route.operation.as_str();
        let tokens = [
            ("input", g.usage.input_tokens),
            ("output", g.usage.output_tokens),
        ];
        for (token_type, count) in tokens {
            if let Some(count) = count {
                let labels = TokenLabels {
                    gen_ai_token_type: token_type,
                    gen_ai_request_model: model.clone(),
                    gen_ai_operation_name: operation,
                };
                metrics
                    .token_usage
                    .get_or_create(&labels)
                    .observe(count as f64);
            }
        }
        record_tool_calls(metrics, g, &model);
        let labels = OperationLabels {
            gen_ai_request_model: model.clone(),
            gen_ai_operation_name: operation,
        };
        metrics.operation_duration.get_or_create(&labels).observe(
            c.duration.as_secs_f64(),
            exemplar.cloned(),
            None,
        );
        let Some(ttft) = g.time_to_first_token else {
            return;
        };
        let labels = ModelLabel {
            gen_ai_request_model: model,
        };
        metrics.time_to_first_token.get_or_create(&labels).observe(
            ttft.as_secs_f64(),
            exemplar.cloned(),
            None,
        );
        // Time per output token after the first, as the conventions define it.
        if let Some(output) = g.usage.output_tokens.filter(|n| *n > 1) {
            let generating = c.duration.saturating_sub(ttft).as_secs_f64();
            metrics
                .time_per_output_token
                .get_or_create(&labels)
                .observe(generating / (output - 1) as f64);
        }
    }
}

/// One count per tool call, by its bounded name; calls without one (or past
/// the tap's named ones) count as `other`.
fn record_tool_calls(
    metrics: &crate::metrics::GenAiMetrics,
    g: &GenAiCompletion,
    model: &Arc<str>,
) {
    let calls = &g.usage.tool_calls;
    let mut named = 0;
    let count = |name: Arc<str>, n: u64| {
        let labels = ToolCallLabels {
            gen_ai_tool_name: name,
            gen_ai_request_model: model.clone(),
        };
        metrics.tool_calls.get_or_create(&labels).inc_by(n);
    };
    for (name, n) in &calls.names {
        named += n;
        count(metrics.tools.label(name), *n);
    }
    if calls.count > named {
        count(Arc::from("other"), calls.count - named);
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
                trace_id: crate::context::trace_context::trace_id_hex(t.trace_id()),
            });

        let route = self.handles.route(e.known_method, e.handler.index);
        let (requests, duration) = http.by_status(route, c.status);
        requests.inc();
        duration.observe(c.duration.as_secs_f64(), exemplar.clone(), None);
        if let Some(first_byte) = c.first_byte {
            http.first_byte(route)
                .observe(first_byte.as_secs_f64(), exemplar.clone(), None);
        }

        let handler = self.handles.handler(e.handler.index);
        let (request_size, response_size) = http.sizes(handler);
        request_size.observe(c.bytes_in as f64);
        response_size.observe(c.bytes_out as f64);
        if let (Some(status), Some(upstream)) = (c.upstream_status, c.upstream_duration) {
            http.upstream(handler, status)
                .observe(upstream.as_secs_f64(), exemplar.clone(), None);
        }
        if let Some(kind) = c.error_kind() {
            http.error(handler, kind).inc();
        }
        if let Some(genai) = &c.genai {
            self.record_genai(c, genai, exemplar.as_ref());
        }
    }
}
