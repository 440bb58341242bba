//! GenAI metrics with the OpenTelemetry GenAI semantic conventions' names
//! (dots as underscores), units and bucket boundaries.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::buckets;
use super::labels::TraceExemplar;

const OTHER_MODEL: &str = "other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub gen_ai_token_type: &'static str,
    pub gen_ai_request_model: Arc<str>,
    pub gen_ai_operation_name: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub gen_ai_request_model: Arc<str>,
    pub gen_ai_operation_name: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolCallLabels {
    pub gen_ai_tool_name: Arc<str>,
    pub gen_ai_request_model: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabel {
    pub gen_ai_request_model: Arc<str>,
}

type Timing = HistogramWithExemplars<TraceExemplar>;

pub struct GenAiMetrics {
    pub token_usage: Family<TokenLabels, Histogram, fn() -> Histogram>,
    pub operation_duration: Family<OperationLabels, Timing, fn() -> Timing>,
    pub time_to_first_token: Family<ModelLabel, Timing, fn() -> Timing>,
    pub time_per_output_token: Family<ModelLabel, Histogram, fn() -> Histogram>,
    pub tool_calls: Family<ToolCallLabels, Counter>,
    pub models: ModelLabels,
    /// Tool names, bounded as models are (the same cap).
    pub tools: ModelLabels,
}

fn token_histogram() -> Histogram {
    Histogram::new(buckets::TOKENS.iter().copied())
}

fn operation_timing() -> Timing {
    HistogramWithExemplars::new(buckets::OPERATION_SECONDS.iter().copied())
}

fn ttft_timing() -> Timing {
    HistogramWithExemplars::new(buckets::TTFT_SECONDS.iter().copied())
}

fn per_token_histogram() -> Histogram {
    Histogram::new(buckets::TIME_PER_TOKEN_SECONDS.iter().copied())
}

impl GenAiMetrics {
    pub fn register(registry: &mut Registry, max_models: usize) -> Self {
        let this = Self {
            token_usage: Family::new_with_constructor(token_histogram),
            operation_duration: Family::new_with_constructor(operation_timing),
            time_to_first_token: Family::new_with_constructor(ttft_timing),
            time_per_output_token: Family::new_with_constructor(per_token_histogram),
            tool_calls: Family::default(),
            models: ModelLabels::new(max_models),
            tools: ModelLabels::new(max_models),
        };
        this.register_all(registry);
        this
    }

    fn register_all(&self, registry: &mut Registry) {
        registry.register(
            "gen_ai_client_token_usage",
            "Tokens used per GenAI operation, by token type (input, output)",
            self.token_usage.clone(),
        );
        registry.register(
            "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration, to the end of the (streamed) answer",
            self.operation_duration.clone(),
        );
        registry.register(
            "gen_ai_server_time_to_first_token_seconds",
            "Time from the request to the first output token",
            self.time_to_first_token.clone(),
        );
        registry.register(
            "gen_ai_server_time_per_output_token_seconds",
            "Time per output token after the first",
            self.time_per_output_token.clone(),
        );
        // Registered without the `_total` the encoder appends.
        registry.register(
            "gen_ai_response_tool_calls",
            "Tool calls GenAI responses asked for, by tool name",
            self.tool_calls.clone(),
        );
    }
}

/// Model (or tool) names as label values: the first `cap` distinct names
/// keep their name, every later one is `other`, so label cardinality stays
/// bounded whatever clients send.
pub struct ModelLabels {
    cap: usize,
    known: RwLock<HashMap<String, Arc<str>>>,
    other: Arc<str>,
}

impl ModelLabels {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            known: RwLock::new(HashMap::new()),
            other: Arc::from(OTHER_MODEL),
        }
    }

    pub fn label(&self, model: &str) -> Arc<str> {
        if let Some(label) = self
            .known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(model)
        {
            return label.clone();
        }
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        if let Some(label) = known.get(model) {
            return label.clone();
        }
        if known.len() >= self.cap {
            return self.other.clone();
        }
        let label: Arc<str> = Arc::from(model);
        known.insert(model.to_owned(), label.clone());
        label
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_are_capped() {
        let models = ModelLabels::new(2);
        assert_eq!(&*models.label("a"), "a");
        assert_eq!(&*models.label("b"), "b");
        assert_eq!(&*models.label("c"), "other");
        assert_eq!(&*models.label("a"), "a");
    }
}
