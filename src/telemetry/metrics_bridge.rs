//! The registry seen through OTLP: a snapshot of every Prometheus family
//! (the same handles `/metrics` reads; the request path records each
//! measurement once) converted into an `ExportMetricsServiceRequest` under
//! the OpenTelemetry names of [`otel_names`].
//!
//! The OpenTelemetry SDK cannot take measurements it did not aggregate (it
//! has no metric producer, and its `ResourceMetrics` cannot be built outside
//! it), so this bridge does what its periodic reader would: counters become
//! monotonic sums, the in-flight gauge a non-monotonic sum, gauges gauges,
//! histograms explicit-bucket histograms; with delta temporality each series
//! carries its change since the previous collection (series that did not
//! change are left out, as the SDK leaves them out), with cumulative its
//! total since the process started.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric, number_data_point, AggregationTemporality, Exemplar, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prometheus_client::encoding::prometheus_protobuf::prometheus_data_model as pm;

use crate::config::Temporality;
use crate::exchange::KnownMethod;
use crate::metrics::otel_names::{self, Instrument, Value};

/// One export's request and how many data points it carries (what is
/// counted as dropped when it fails).
pub struct Batch {
    pub request: ExportMetricsServiceRequest,
    pub points: u64,
}

/// A series: its family and its labels, as `/metrics` names them.
type SeriesKey = (String, Vec<(String, String)>);

/// What a series held at the previous collection.
enum Seen {
    Counter {
        value: f64,
        exemplar: Option<ExemplarId>,
    },
    Histogram {
        count: u64,
        sum: f64,
        /// Per bucket, the last one being the overflow (+Inf) bucket.
        buckets: Vec<u64>,
        /// Each bucket's exemplar, so one is exported once, when it is new.
        exemplars: Vec<Option<ExemplarId>>,
    },
}

/// An exemplar as the registry keeps it: its labels (the trace id) and value.
#[derive(PartialEq)]
struct ExemplarId {
    labels: Vec<(String, String)>,
    value: u64,
}

/// Converts snapshots of the registry, remembering the previous one.
pub struct MetricsBridge {
    temporality: Temporality,
    resource: Resource,
    scope: InstrumentationScope,
    /// `server.address` and `server.port` of the upstream.
    upstream: Vec<KeyValue>,
    /// When the registry began counting: the start of cumulative series.
    started: u64,
    /// The previous collection: the start of delta series.
    previous: u64,
    seen: HashMap<SeriesKey, Seen>,
}

impl MetricsBridge {
    /// `upstream` is the backend's host and port; `started` is when the
    /// registry began counting.
    pub fn new(
        temporality: Temporality,
        resource: Resource,
        upstream: (&str, u16),
        started: SystemTime,
    ) -> Self {
        let started = nanos(started);
        Self {
            temporality,
            resource,
            scope: InstrumentationScope {
                name: env!("CARGO_PKG_NAME").to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                ..InstrumentationScope::default()
            },
            upstream: vec![
                string("server.address", upstream.0),
                int("server.port", i64::from(upstream.1)),
            ],
            started,
            previous: started,
            seen: HashMap::new(),
        }
    }

    /// The OTLP request for the `families` of a snapshot taken at `now`.
    pub fn convert(&mut self, families: Vec<pm::MetricFamily>, now: SystemTime) -> Batch {
        let mut collection = Collection {
            now: nanos(now),
            delta: self.temporality == Temporality::Delta,
            delta_start: self.previous,
            started: self.started,
            before: std::mem::take(&mut self.seen),
            seen: HashMap::new(),
            points: 0,
        };
        let metrics = families
            .into_iter()
            .filter_map(|family| collection.family(family, &self.upstream))
            .collect();
        // Series that disappeared are forgotten with the old map.
        self.seen = collection.seen;
        self.previous = collection.now;
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(self.resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(self.scope.clone()),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        Batch {
            request,
            points: collection.points,
        }
    }
}

/// One collection in progress.
struct Collection {
    now: u64,
    delta: bool,
    delta_start: u64,
    started: u64,
    before: HashMap<SeriesKey, Seen>,
    seen: HashMap<SeriesKey, Seen>,
    points: u64,
}

impl Collection {
    fn family(&mut self, family: pm::MetricFamily, upstream: &[KeyValue]) -> Option<Metric> {
        let (name, unit, instrument, peer) = match otel_names::metric_of(&family.name) {
            Some(m) => (m.name.to_owned(), m.unit, m.instrument, m.upstream),
            None if otel_names::CARRIED_BY
                .iter()
                .any(|(f, _)| *f == family.name) =>
            {
                return None
            }
            // A family without a row (a unit test forbids it) keeps its
            // Prometheus name rather than disappearing.
            None => (
                family.name.clone(),
                "",
                instrument_of(family.r#type)?,
                false,
            ),
        };
        let mut numbers = Vec::new();
        let mut histograms = Vec::new();
        for series in family.metric {
            let labels: Vec<(String, String)> = series
                .label
                .into_iter()
                .map(|l| (l.name, l.value))
                .collect();
            let mut attributes: Vec<KeyValue> =
                labels.iter().map(|(k, v)| attribute(k, v)).collect();
            if peer {
                attributes.extend_from_slice(upstream);
            }
            let key = (family.name.clone(), labels);
            match instrument {
                Instrument::Counter => {
                    if let Some(counter) = series.counter {
                        // A counter of seconds (CPU time) has fractions; the rest count.
                        let seconds = unit == "s";
                        numbers.extend(self.counter(key, counter, attributes, seconds));
                    }
                }
                Instrument::Gauge | Instrument::UpDownCounter => {
                    let Some(gauge) = series.gauge else { continue };
                    let (start, value) = match instrument {
                        // A sum counts: an integer, from the start. A gauge has no start.
                        Instrument::UpDownCounter => (
                            self.started,
                            number_data_point::Value::AsInt(gauge.value as i64),
                        ),
                        _ => (0, number_data_point::Value::AsDouble(gauge.value)),
                    };
                    numbers.push(NumberDataPoint {
                        attributes,
                        start_time_unix_nano: start,
                        time_unix_nano: self.now,
                        value: Some(value),
                        ..NumberDataPoint::default()
                    });
                }
                Instrument::Histogram => {
                    if let Some(histogram) = series.histogram {
                        histograms.extend(self.histogram(key, histogram, attributes));
                    }
                }
            }
        }
        self.points += (numbers.len() + histograms.len()) as u64;
        if numbers.is_empty() && histograms.is_empty() {
            return None;
        }
        let temporality = if self.delta {
            AggregationTemporality::Delta
        } else {
            AggregationTemporality::Cumulative
        } as i32;
        let data = match instrument {
            Instrument::Counter => metric::Data::Sum(Sum {
                data_points: numbers,
                aggregation_temporality: temporality,
                is_monotonic: true,
            }),
            // The specification's delta preference keeps up-down counters cumulative.
            Instrument::UpDownCounter => metric::Data::Sum(Sum {
                data_points: numbers,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: false,
            }),
            Instrument::Gauge => metric::Data::Gauge(Gauge {
                data_points: numbers,
            }),
            Instrument::Histogram => metric::Data::Histogram(Histogram {
                data_points: histograms,
                aggregation_temporality: temporality,
            }),
        };
        Some(Metric {
            name,
            description: family.help,
            unit: unit.to_owned(),
            metadata: Vec::new(),
            data: Some(data),
        })
    }

    fn counter(
        &mut self,
        key: SeriesKey,
        counter: pm::Counter,
        attributes: Vec<KeyValue>,
        seconds: bool,
    ) -> Option<NumberDataPoint> {
        let exemplar_now = counter.exemplar.as_ref().map(exemplar_id);
        let (value_before, exemplar_before) = match self.before.get(&key) {
            Some(Seen::Counter { value, exemplar }) => (Some(*value), exemplar.as_ref()),
            _ => (None, None),
        };
        let exemplars = match &counter.exemplar {
            Some(e) if exemplar_before != exemplar_now.as_ref() => vec![otlp_exemplar(e, self.now)],
            _ => Vec::new(),
        };
        let (value, start) = match value_before {
            // A counter below its previous value was reset: all of it is new.
            Some(before) if self.delta && counter.value >= before => {
                (counter.value - before, self.delta_start)
            }
            _ if self.delta => (counter.value, self.delta_start),
            _ => (counter.value, self.started),
        };
        self.seen.insert(
            key,
            Seen::Counter {
                value: counter.value,
                exemplar: exemplar_now,
            },
        );
        if self.delta && value == 0.0 {
            return None;
        }
        Some(NumberDataPoint {
            attributes,
            start_time_unix_nano: start,
            time_unix_nano: self.now,
            exemplars,
            // The others count (u64 underneath): exact below 2^53.
            value: Some(if seconds {
                number_data_point::Value::AsDouble(value)
            } else {
                number_data_point::Value::AsInt(value as i64)
            }),
            ..NumberDataPoint::default()
        })
    }

    fn histogram(
        &mut self,
        key: SeriesKey,
        histogram: pm::Histogram,
        attributes: Vec<KeyValue>,
    ) -> Option<HistogramDataPoint> {
        let count = histogram.sample_count;
        let sum = histogram.sample_sum;
        let (bounds, buckets, exemplar_ids, exemplars_now) = split_buckets(histogram, count);
        let before = match self.before.get(&key) {
            Some(Seen::Histogram {
                count,
                sum,
                buckets: counts,
                exemplars,
            }) if counts.len() == buckets.len() => Some((*count, *sum, counts, exemplars)),
            _ => None,
        };
        let exemplars = exemplars_now
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let e = e.as_ref()?;
                let known = before.is_some_and(|(.., ids)| ids[i] == exemplar_ids[i]);
                (!known).then(|| otlp_exemplar(e, self.now))
            })
            .collect();
        let (point_count, point_sum, point_buckets) = match before {
            Some((count_before, sum_before, buckets_before, _)) if self.delta => (
                count.saturating_sub(count_before),
                sum - sum_before,
                buckets
                    .iter()
                    .zip(buckets_before)
                    .map(|(now, then)| now.saturating_sub(*then))
                    .collect(),
            ),
            _ => (count, sum, buckets.clone()),
        };
        self.seen.insert(
            key,
            Seen::Histogram {
                count,
                sum,
                buckets,
                exemplars: exemplar_ids,
            },
        );
        if self.delta && point_count == 0 {
            return None;
        }
        Some(HistogramDataPoint {
            attributes,
            start_time_unix_nano: if self.delta {
                self.delta_start
            } else {
                self.started
            },
            time_unix_nano: self.now,
            count: point_count,
            sum: Some(point_sum),
            bucket_counts: point_buckets,
            explicit_bounds: bounds,
            exemplars,
            ..HistogramDataPoint::default()
        })
    }
}

/// Prometheus' cumulative buckets as OTLP's: the finite bounds, each
/// bucket's own count with the overflow bucket last (Prometheus may leave
/// its `+Inf` bucket out: the total says what it holds), and each bucket's
/// exemplar.
#[allow(clippy::type_complexity)]
fn split_buckets(
    histogram: pm::Histogram,
    count: u64,
) -> (
    Vec<f64>,
    Vec<u64>,
    Vec<Option<ExemplarId>>,
    Vec<Option<pm::Exemplar>>,
) {
    let mut bounds = Vec::with_capacity(histogram.bucket.len());
    let mut buckets = Vec::with_capacity(histogram.bucket.len() + 1);
    let mut exemplars = Vec::with_capacity(histogram.bucket.len() + 1);
    let mut below = 0;
    let mut overflow_exemplar = None;
    for bucket in histogram.bucket {
        if !bucket.upper_bound.is_finite() {
            overflow_exemplar = bucket.exemplar;
            break;
        }
        bounds.push(bucket.upper_bound);
        buckets.push(bucket.cumulative_count.saturating_sub(below));
        below = below.max(bucket.cumulative_count);
        exemplars.push(bucket.exemplar);
    }
    buckets.push(count.saturating_sub(below));
    exemplars.push(overflow_exemplar);
    let ids = exemplars
        .iter()
        .map(|e| e.as_ref().map(exemplar_id))
        .collect();
    (bounds, buckets, ids, exemplars)
}

fn instrument_of(family_type: i32) -> Option<Instrument> {
    match pm::MetricType::try_from(family_type).ok()? {
        pm::MetricType::Counter => Some(Instrument::Counter),
        pm::MetricType::Gauge => Some(Instrument::Gauge),
        pm::MetricType::Histogram => Some(Instrument::Histogram),
        _ => None,
    }
}

fn exemplar_id(e: &pm::Exemplar) -> ExemplarId {
    ExemplarId {
        labels: e
            .label
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect(),
        value: e.value.to_bits(),
    }
}

/// The registry's exemplar as OTLP's: the `trace_id` label becomes the
/// exemplar's trace id. The registry keeps no time for it (the request path
/// records none), so it gets the time of the first collection that sees it:
/// it was recorded since the previous one.
fn otlp_exemplar(e: &pm::Exemplar, now: u64) -> Exemplar {
    let mut trace_id = Vec::new();
    let mut filtered_attributes = Vec::new();
    for label in &e.label {
        match opentelemetry::trace::TraceId::from_hex(&label.value) {
            Ok(id) if label.name == "trace_id" => trace_id = id.to_bytes().to_vec(),
            _ => filtered_attributes.push(string(&label.name, &label.value)),
        }
    }
    let time_unix_nano = e.timestamp.as_ref().map_or(now, |t| {
        u64::try_from(t.seconds).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.nanos).unwrap_or(0)
    });
    Exemplar {
        filtered_attributes,
        time_unix_nano,
        span_id: Vec::new(),
        trace_id,
        value: Some(exemplar::Value::AsDouble(e.value)),
    }
}

/// A label as its attribute (see [`otel_names::ATTRIBUTES`]).
fn attribute(label: &str, value: &str) -> KeyValue {
    let (key, conversion) = otel_names::attribute_of(label);
    match conversion {
        Value::Int => match value.parse::<i64>() {
            Ok(n) => int(key, n),
            Err(_) => string(key, value),
        },
        Value::Method => {
            let method = KnownMethod::ALL
                .iter()
                .find(|m| m.label() == value)
                .map_or(value, |m| m.semconv());
            string(key, method)
        }
        Value::Str => string(key, value),
    }
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..KeyValue::default()
    }
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::context::RouteTable;
    use crate::metrics::{DropCounters, Metrics, TraceExemplar};

    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    const DURATION_BOUNDS: usize = crate::metrics::buckets::DURATION_SECONDS.len();

    struct Fixture {
        metrics: Metrics,
        routes: Arc<crate::metrics::HttpHandles>,
        bridge: MetricsBridge,
        start: SystemTime,
    }

    impl Fixture {
        fn new(temporality: Temporality) -> Self {
            let metrics = Metrics::new(10, Arc::new(DropCounters::default()));
            let routes = Arc::new(metrics.http.handles(&RouteTable::new(&[])));
            let start = UNIX_EPOCH + Duration::from_secs(1_000);
            let bridge =
                MetricsBridge::new(temporality, Resource::default(), ("ollama", 11434), start);
            Self {
                metrics,
                routes,
                bridge,
                start,
            }
        }

        /// One request of `method` answered `status` in `seconds`.
        fn request(&self, method: KnownMethod, status: u16, seconds: f64, trace: Option<&str>) {
            let route = self.routes.route(method, 0);
            let (requests, duration) = self.metrics.http.by_status(route, status);
            requests.inc();
            let exemplar = trace.map(|t| TraceExemplar {
                trace_id: t.to_owned(),
            });
            duration.observe(seconds, exemplar, None);
        }

        fn collect(&mut self, after_secs: u64) -> Vec<Metric> {
            let now = self.start + Duration::from_secs(after_secs);
            let batch = self.bridge.convert(self.metrics.snapshot().unwrap(), now);
            let points: usize = metrics_of(&batch.request).iter().map(points).sum();
            assert_eq!(batch.points as usize, points);
            metrics_of(&batch.request)
        }
    }

    fn metrics_of(request: &ExportMetricsServiceRequest) -> Vec<Metric> {
        request.resource_metrics[0].scope_metrics[0].metrics.clone()
    }

    fn points(metric: &Metric) -> usize {
        match metric.data.as_ref().unwrap() {
            metric::Data::Sum(s) => s.data_points.len(),
            metric::Data::Gauge(g) => g.data_points.len(),
            metric::Data::Histogram(h) => h.data_points.len(),
            _ => 0,
        }
    }

    fn find<'a>(metrics: &'a [Metric], name: &str) -> Option<&'a Metric> {
        metrics.iter().find(|m| m.name == name)
    }

    fn histogram(metric: &Metric) -> &Histogram {
        match metric.data.as_ref().unwrap() {
            metric::Data::Histogram(h) => h,
            other => panic!("{} is not a histogram: {other:?}", metric.name),
        }
    }

    fn sum(metric: &Metric) -> &Sum {
        match metric.data.as_ref().unwrap() {
            metric::Data::Sum(s) => s,
            other => panic!("{} is not a sum: {other:?}", metric.name),
        }
    }

    fn attr(attributes: &[KeyValue], key: &str) -> Option<any_value::Value> {
        attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.clone()?.value)
    }

    fn text(value: &str) -> Option<any_value::Value> {
        Some(any_value::Value::StringValue(value.to_owned()))
    }

    fn nanos_after(start: SystemTime, secs: u64) -> u64 {
        nanos(start + Duration::from_secs(secs))
    }

    #[test]
    fn a_histogram_keeps_its_buckets_attributes_and_exemplar() {
        let mut f = Fixture::new(Temporality::Cumulative);
        f.request(KnownMethod::Get, 200, 0.003, Some(TRACE));
        f.request(KnownMethod::Get, 200, 0.2, None);
        f.request(KnownMethod::Get, 200, 1_000.0, None);
        let metrics = f.collect(60);

        let duration = find(&metrics, "http.server.request.duration").unwrap();
        assert_eq!(duration.unit, "s");
        let h = histogram(duration);
        assert_eq!(
            h.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let point = &h.data_points[0];
        assert_eq!(point.count, 3);
        assert!((point.sum.unwrap() - 1_000.203).abs() < 1e-9);
        assert_eq!(
            point.explicit_bounds,
            crate::metrics::buckets::DURATION_SECONDS
        );
        assert_eq!(point.bucket_counts.len(), DURATION_BOUNDS + 1);
        // 0.003 in (..0.005], 0.2 in (0.1..0.25], 1000 s beyond the last bound.
        let mut expected = vec![0; DURATION_BOUNDS + 1];
        expected[0] = 1;
        expected[5] = 1;
        expected[DURATION_BOUNDS] = 1;
        assert_eq!(point.bucket_counts, expected);
        assert_eq!(point.start_time_unix_nano, nanos(f.start));
        assert_eq!(point.time_unix_nano, nanos_after(f.start, 60));
        assert_eq!(attr(&point.attributes, "http.request.method"), text("GET"));
        assert_eq!(attr(&point.attributes, "http.route"), text("other"));
        assert_eq!(
            attr(&point.attributes, "http.response.status_code"),
            Some(any_value::Value::IntValue(200))
        );
        assert_eq!(point.attributes.len(), 3, "server metrics name no peer");
        assert_eq!(point.exemplars.len(), 1);
        let exemplar = &point.exemplars[0];
        assert_eq!(
            exemplar.trace_id,
            opentelemetry::trace::TraceId::from_hex(TRACE)
                .unwrap()
                .to_bytes()
        );
        assert_eq!(exemplar.value, Some(exemplar::Value::AsDouble(0.003)));
        assert!(exemplar.filtered_attributes.is_empty());

        // The request counter is the histogram's count, not a metric of its own.
        assert!(metrics
            .iter()
            .all(|m| !m.name.contains("requests") || m.name == "http.server.active_requests"));

        // Nothing new: the totals again, the exemplar not twice.
        let again = f.collect(120);
        let point =
            &histogram(find(&again, "http.server.request.duration").unwrap()).data_points[0];
        assert_eq!(point.count, 3);
        assert!(point.exemplars.is_empty());
        assert_eq!(point.start_time_unix_nano, nanos(f.start));
    }

    #[test]
    fn delta_carries_the_change_since_the_previous_collection() {
        let mut f = Fixture::new(Temporality::Delta);
        f.request(KnownMethod::Get, 200, 0.003, None);
        f.request(KnownMethod::Post, 500, 0.003, None);
        let first = f.collect(60);
        let h = histogram(find(&first, "http.server.request.duration").unwrap());
        assert_eq!(
            h.aggregation_temporality,
            AggregationTemporality::Delta as i32
        );
        assert_eq!(h.data_points.len(), 2);
        assert!(h
            .data_points
            .iter()
            .all(|p| p.start_time_unix_nano == nanos(f.start)));

        f.request(KnownMethod::Get, 200, 0.2, Some(TRACE));
        let second = f.collect(120);
        let h = histogram(find(&second, "http.server.request.duration").unwrap());
        // Only the series that changed, with only its change.
        assert_eq!(h.data_points.len(), 1);
        let point = &h.data_points[0];
        assert_eq!(attr(&point.attributes, "http.request.method"), text("GET"));
        assert_eq!(point.count, 1);
        assert!((point.sum.unwrap() - 0.2).abs() < 1e-12);
        assert_eq!(point.bucket_counts.iter().sum::<u64>(), 1);
        assert_eq!(point.bucket_counts[5], 1);
        assert_eq!(point.start_time_unix_nano, nanos_after(f.start, 60));
        assert_eq!(point.time_unix_nano, nanos_after(f.start, 120));
        assert_eq!(point.exemplars.len(), 1);

        // Unchanged counters are left out; gauges and the up-down sum stay.
        assert!(find(&second, "otel_sidecar.telemetry.dropped").is_none());
        assert!(find(&second, "otel_sidecar.build.info").is_some());
        let active = sum(find(&second, "http.server.active_requests").unwrap());
        assert!(!active.is_monotonic);
        assert_eq!(
            active.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );

        // Nothing at all new: no histogram.
        let third = f.collect(180);
        assert!(find(&third, "http.server.request.duration").is_none());
    }

    #[test]
    fn counters_are_monotonic_sums_and_methods_use_the_conventions_names() {
        let mut f = Fixture::new(Temporality::Cumulative);
        f.request(KnownMethod::Other, 404, 0.01, None);
        let handler = f.routes.handler(0);
        f.metrics
            .http
            .error(handler, crate::error::ProxyErrorKind::Timeout)
            .inc();
        let metrics = f.collect(60);
        let point =
            &histogram(find(&metrics, "http.server.request.duration").unwrap()).data_points[0];
        assert_eq!(
            attr(&point.attributes, "http.request.method"),
            text("_OTHER")
        );

        let errors = find(&metrics, "otel_sidecar.upstream.errors").unwrap();
        assert_eq!(errors.unit, "{error}");
        let s = sum(errors);
        assert!(s.is_monotonic);
        let point = &s.data_points[0];
        assert_eq!(point.value, Some(number_data_point::Value::AsInt(1)));
        assert_eq!(attr(&point.attributes, "error.type"), text("timeout"));
        // Measured against the upstream: it is named.
        assert_eq!(attr(&point.attributes, "server.address"), text("ollama"));
        assert_eq!(
            attr(&point.attributes, "server.port"),
            Some(any_value::Value::IntValue(11434))
        );

        let dropped = sum(find(&metrics, "otel_sidecar.telemetry.dropped").unwrap());
        let signals: Vec<_> = dropped
            .data_points
            .iter()
            .map(|p| attr(&p.attributes, "otel_sidecar.signal"))
            .collect();
        assert!(signals.contains(&text("metrics")), "{signals:?}");
    }

    #[test]
    fn a_histogram_without_its_inf_bucket_gets_the_rest_in_the_overflow() {
        let bucket = |upper_bound, cumulative_count| pm::Bucket {
            upper_bound,
            cumulative_count,
            ..pm::Bucket::default()
        };
        let histogram = pm::Histogram {
            sample_count: 10,
            bucket: vec![bucket(1.0, 2), bucket(2.0, 5)],
            ..pm::Histogram::default()
        };
        let (bounds, buckets, ..) = split_buckets(histogram.clone(), 10);
        assert_eq!(bounds, vec![1.0, 2.0]);
        assert_eq!(buckets, vec![2, 3, 5]);
        let mut with_inf = histogram;
        with_inf.bucket.push(bucket(f64::INFINITY, 10));
        let (bounds, buckets, ..) = split_buckets(with_inf, 10);
        assert_eq!(bounds, vec![1.0, 2.0]);
        assert_eq!(buckets, vec![2, 3, 5]);
    }
}
