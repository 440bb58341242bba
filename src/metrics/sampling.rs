//! `sidecar_traces_sampled_total`: what the `outcome` sampler decided for
//! each exchange, and why.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

type Labels = [(&'static str, &'static str); 2];

/// The family; its series appear once an `outcome` sampler resolves them.
#[derive(Clone, Default)]
pub struct SamplingMetrics {
    decisions: Family<Labels, Counter>,
}

/// The five series an `outcome` sampler records into, resolved once.
#[derive(Clone)]
pub struct SamplingHandles {
    pub kept_error: Counter,
    pub kept_slow: Counter,
    pub kept_parent: Counter,
    pub kept_ratio: Counter,
    /// A dropped exchange carries `reason="ratio"`: the ratio was the last
    /// rule that could have kept it.
    pub dropped: Counter,
}

impl SamplingMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "sidecar_traces_sampled",
            "Exchanges the outcome sampler kept or dropped, by the first rule that decided",
            metrics.decisions.clone(),
        );
        metrics
    }

    pub fn handles(&self) -> SamplingHandles {
        let series = |decision, reason| {
            self.decisions
                .get_or_create(&[("decision", decision), ("reason", reason)])
                .clone()
        };
        SamplingHandles {
            kept_error: series("kept", "error"),
            kept_slow: series("kept", "slow"),
            kept_parent: series("kept", "parent"),
            kept_ratio: series("kept", "ratio"),
            dropped: series("dropped", "ratio"),
        }
    }
}
