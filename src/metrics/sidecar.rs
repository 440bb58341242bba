//! The `sidecar_*` families: the sidecar's own health (telemetry it had to
//! drop, readiness, reloads) and its build.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Counts of telemetry dropped so that traffic never waits for it. Each
/// signal's pipeline owns its counter; the registry reads them at scrape time.
#[derive(Debug, Default)]
pub struct DropCounters {
    pub spans: Arc<AtomicU64>,
    pub sentry_events: Arc<AtomicU64>,
    /// Data points of OTLP metric exports that failed or were rejected.
    pub metrics: Arc<AtomicU64>,
    /// The log writers' and the OTLP record queue's counters (set once
    /// logging is initialised).
    pub logs: OnceLock<crate::telemetry::logging::LogDrops>,
}

impl DropCounters {
    fn values(&self) -> [(&'static str, u64); 4] {
        let logs = self.logs.get().map_or(0, |d| d.lost());
        [
            ("spans", self.spans.load(Ordering::Relaxed)),
            ("sentry_events", self.sentry_events.load(Ordering::Relaxed)),
            ("logs", logs),
            ("metrics", self.metrics.load(Ordering::Relaxed)),
        ]
    }
}

#[derive(Debug)]
struct DropCollector(Arc<DropCounters>);

impl Collector for DropCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "sidecar_telemetry_dropped",
            "Telemetry items dropped so that requests never wait, by signal.",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (signal, value) in self.0.values() {
            let labels = [("signal", signal)];
            let metric = family.encode_family(&labels)?;
            ConstCounter::new(value).encode(metric)?;
        }
        Ok(())
    }
}

/// Configuration reloads: how many, how they went, and when the last good one was.
#[derive(Clone)]
pub struct ReloadMetrics {
    reloads: Family<[(&'static str, &'static str); 1], Counter>,
    last_success: Gauge<f64, AtomicU64>,
}

impl ReloadMetrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            reloads: Family::default(),
            last_success: Gauge::default(),
        };
        for result in ["success", "failure"] {
            let _ = metrics.reloads.get_or_create(&[("result", result)]);
        }
        // As Prometheus' own: the start is the first good load.
        metrics.mark_loaded();
        registry.register(
            "sidecar_config_reloads",
            "Configuration reloads (SIGHUP, POST /reload), by result",
            metrics.reloads.clone(),
        );
        registry.register(
            "sidecar_config_last_reload_success_timestamp_seconds",
            "When the running configuration was loaded (start or last good reload), in Unix seconds",
            metrics.last_success.clone(),
        );
        metrics
    }

    pub fn succeeded(&self) {
        self.reloads.get_or_create(&[("result", "success")]).inc();
        self.mark_loaded();
    }

    fn mark_loaded(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.last_success.set(now);
    }

    pub fn failed(&self) {
        self.reloads.get_or_create(&[("result", "failure")]).inc();
    }
}

/// Registers the `sidecar_*` families; returns the reload metrics and the
/// readiness gauge for their owners to set.
pub fn register(registry: &mut Registry, drops: Arc<DropCounters>) -> (ReloadMetrics, Gauge) {
    registry.register_collector(Box::new(DropCollector(drops)));
    let build = Family::<[(&'static str, &'static str); 1], Gauge>::default();
    build
        .get_or_create(&[("version", env!("CARGO_PKG_VERSION"))])
        .set(1);
    registry.register(
        "sidecar_build_info",
        "Always 1; the labels describe the running build",
        build,
    );
    let ready = Gauge::default();
    registry.register(
        "sidecar_ready",
        "1 while /readyz answers 200 (the upstream accepted the last TCP probe and the sidecar is not draining), else 0",
        ready.clone(),
    );
    (ReloadMetrics::register(registry), ready)
}
