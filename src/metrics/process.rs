//! The standard `process_*` families (the names every Prometheus client
//! library exports), read from `/proc/self` at scrape time, so the sidecar's
//! own CPU, memory and file descriptors are watched without a node exporter
//! in the pod and cost nothing between scrapes.

use procfs::process::{LimitValue, Process};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

#[derive(Debug)]
pub struct ProcessCollector {
    /// Unix seconds; fixed for the process's life, so read once.
    start_time: Option<f64>,
}

impl ProcessCollector {
    pub fn new() -> Self {
        let start_time = Process::myself()
            .and_then(|p| p.stat())
            .and_then(|stat| {
                let boot = procfs::boot_time_secs()?;
                Ok(boot as f64 + stat.starttime as f64 / procfs::ticks_per_second() as f64)
            })
            .ok();
        Self { start_time }
    }
}

/// What one scrape reads; a file that cannot be read (a sandbox without
/// `/proc`) leaves its families out rather than failing the scrape.
struct Sample {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<i64>,
    virtual_bytes: Option<i64>,
    open_fds: Option<i64>,
    max_fds: Option<i64>,
}

fn sample() -> Sample {
    let process = Process::myself().ok();
    let stat = process.as_ref().and_then(|p| p.stat().ok());
    let ticks = procfs::ticks_per_second() as f64;
    let max_fds = process
        .as_ref()
        .and_then(|p| p.limits().ok())
        .map(|limits| match limits.max_open_files.soft_limit {
            LimitValue::Value(n) => i64::try_from(n).unwrap_or(i64::MAX),
            LimitValue::Unlimited => i64::MAX,
        });
    Sample {
        cpu_seconds: stat.as_ref().map(|s| (s.utime + s.stime) as f64 / ticks),
        resident_bytes: stat.as_ref().map(|s| (s.rss * procfs::page_size()) as i64),
        virtual_bytes: stat.as_ref().map(|s| s.vsize as i64),
        open_fds: process
            .as_ref()
            .and_then(|p| p.fd_count().ok())
            .map(|n| n as i64),
        max_fds,
    }
}

fn gauge<N>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: Option<N>,
) -> Result<(), std::fmt::Error>
where
    ConstGauge<N>: EncodeMetric,
{
    let Some(value) = value else {
        return Ok(());
    };
    let metric = encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    ConstGauge::new(value).encode(metric)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let sample = sample();
        if let Some(seconds) = sample.cpu_seconds {
            let metric = encoder.encode_descriptor(
                "process_cpu",
                "Total user and system CPU time spent in seconds.",
                Some(&Unit::Seconds),
                MetricType::Counter,
            )?;
            ConstCounter::new(seconds).encode(metric)?;
        }
        gauge(
            &mut encoder,
            "process_resident_memory",
            "Resident memory size in bytes.",
            Some(&Unit::Bytes),
            sample.resident_bytes,
        )?;
        gauge(
            &mut encoder,
            "process_virtual_memory",
            "Virtual memory size in bytes.",
            Some(&Unit::Bytes),
            sample.virtual_bytes,
        )?;
        gauge(
            &mut encoder,
            "process_open_fds",
            "Number of open file descriptors.",
            None,
            sample.open_fds,
        )?;
        gauge(
            &mut encoder,
            "process_max_fds",
            "Maximum number of open file descriptors.",
            None,
            sample.max_fds,
        )?;
        gauge(
            &mut encoder,
            "process_start_time",
            "Start time of the process since unix epoch in seconds.",
            Some(&Unit::Seconds),
            self.start_time,
        )
    }
}
