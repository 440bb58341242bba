//! The `outcome` sampler's decision, made once when the exchange completes
//! and before any sink reads it: keep a failure, a slow exchange, a sampled
//! parent's, or the trace-id ratio's share; drop the rest. Arrival already
//! decided the last two (`context::exchange_trace`); the outcome can only
//! add to them, so with `upstream_sampled = "ratio"` a trace the upstream
//! was told is sampled is never dropped.
//!
//! Every sink reads the settled decision: spans are exported, exemplars
//! attached and the access log's flags set only for a kept exchange, so
//! none of them points at a trace that was not exported.

use std::time::Duration;

use super::{Completion, Outcome};
use crate::config::{OutcomeConfig, UpstreamSampled};
use crate::context::exchange_trace::{Arrival, OutcomeArrival};
use crate::context::RouteTable;
use crate::metrics::SamplingHandles;

/// Why an exchange was kept, the first rule that applies in this order; a
/// dropped exchange is counted under `ratio`, the last rule that could
/// have kept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Error,
    Slow,
    Parent,
    Ratio,
}

/// A route's thresholds.
#[derive(Debug, Clone, Copy)]
struct Thresholds {
    slower_than: Duration,
    ttft_slower_than: Option<Duration>,
}

/// The `outcome` sampler of one configuration.
pub struct OutcomeSampler {
    arrival: OutcomeArrival,
    /// By handler index, `other` last.
    thresholds: Box<[Thresholds]>,
    counters: SamplingHandles,
}

impl OutcomeSampler {
    pub fn new(config: &OutcomeConfig, routes: &RouteTable, counters: SamplingHandles) -> Self {
        let thresholds = routes
            .handlers()
            .map(|handler| {
                let own = config.routes.iter().find(|r| *r.name == *handler.name);
                Thresholds {
                    slower_than: own
                        .and_then(|r| r.slower_than)
                        .unwrap_or(config.slower_than),
                    ttft_slower_than: own
                        .and_then(|r| r.ttft_slower_than)
                        .or(config.ttft_slower_than),
                }
            })
            .collect();
        Self {
            arrival: OutcomeArrival {
                honour_parent: config.honour_parent,
                upstream_always: config.upstream_sampled == UpstreamSampled::Always,
            },
            thresholds,
            counters,
        }
    }

    /// What the exchange's arrival needs.
    pub fn arrival(&self) -> &OutcomeArrival {
        &self.arrival
    }

    /// Settles a pending exchange's decision and counts it.
    pub(super) fn settle(&self, c: &mut Completion) {
        let Some(arrival) = c.exchange.trace.as_ref().and_then(|t| t.pending()) else {
            return;
        };
        let reason = self.reason(c, arrival);
        let counter = match reason {
            Some(Reason::Error) => &self.counters.kept_error,
            Some(Reason::Slow) => &self.counters.kept_slow,
            Some(Reason::Parent) => &self.counters.kept_parent,
            Some(Reason::Ratio) => &self.counters.kept_ratio,
            None => &self.counters.dropped,
        };
        counter.inc();
        if let Some(trace) = c.exchange.trace.as_mut() {
            trace.settle(reason.is_some());
        }
    }

    /// Why the exchange is kept, or `None` to drop it.
    fn reason(&self, c: &Completion, arrival: Arrival) -> Option<Reason> {
        if failed(c) {
            return Some(Reason::Error);
        }
        if self.slow(c) {
            return Some(Reason::Slow);
        }
        match arrival {
            Arrival::ParentSampled => Some(Reason::Parent),
            Arrival::InRatio => Some(Reason::Ratio),
            Arrival::Undecided => None,
        }
    }

    fn slow(&self, c: &Completion) -> bool {
        let Some(t) = self.thresholds.get(c.exchange.handler.index) else {
            return false;
        };
        let ttft = c.genai.as_ref().and_then(|g| g.time_to_first_token);
        c.duration > t.slower_than
            || matches!((ttft, t.ttft_slower_than), (Some(ttft), Some(limit)) if ttft > limit)
    }
}

/// Failed as the SERVER span's ERROR status has it (`sinks::spans`): a
/// client that left, a proxy or upstream failure, or a 5xx.
fn failed(c: &Completion) -> bool {
    c.outcome == Outcome::ClientAbort || c.error_kind().is_some() || c.status >= 500
}
