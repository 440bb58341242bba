//! Sampling: whatever the sampler, every Sentry event and every exemplar
//! names a trace whose spans were exported; the `outcome` sampler keeps
//! failures and slow exchanges, drops the rest outside its ratio, counts
//! why, and tells the upstream what `upstream_sampled` says.

use std::collections::HashSet;
use std::time::Duration;

use http::{Request, Response};
use otel_sidecar::config::{Config, OutcomeRoute, Sampler, UpstreamSampled};

use crate::metrics::{scrape, value};
use crate::otlp::OtlpReceiver;
use crate::sentry::{with_sentry, Ingest, SentryIngest};
use crate::support::*;

/// How long `/slow` takes; `SLOWER_THAN` is well below it, and far above a
/// fast local exchange.
const SLOW: Duration = Duration::from_millis(400);
const SLOWER_THAN: Duration = Duration::from_millis(200);

/// `/{status}` answers that status at once; `/slow` answers 200 after `SLOW`.
async fn upstream() -> TestUpstream {
    TestUpstream::start(|req| async move {
        let path = req.uri().path().trim_start_matches('/').to_owned();
        if path == "slow" {
            tokio::time::sleep(SLOW).await;
        }
        let status: u16 = path.parse().unwrap_or(200);
        Response::builder()
            .status(status)
            .body(full("body"))
            .unwrap()
    })
    .await
}

/// A sampled or unsampled W3C parent with a fixed trace id per `n`.
fn parent(n: u8, sampled: bool) -> String {
    let flags = if sampled { "01" } else { "00" };
    format!("00-{n:02x}{}-00f067aa0ba902b7-{flags}", "ab".repeat(15))
}

/// One exchange; `parent` is sent as `traceparent` when given.
async fn call(sidecar: &otel_sidecar::Sidecar, path: &str, parent: Option<String>) {
    let mut req = Request::get(format!("http://{}{path}", sidecar.proxy_addr()));
    if let Some(parent) = parent {
        req = req.header("traceparent", parent);
    }
    send(&client(), req.body(full("")).unwrap()).await;
}

/// The trace ids of every exemplar in the exposition.
fn exemplar_trace_ids(exposition: &str) -> Vec<String> {
    exposition
        .lines()
        .filter_map(|l| l.split_once("# {trace_id=\"").map(|(_, rest)| rest))
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect()
}

/// What a run of the same traffic left behind.
struct Run {
    exported: HashSet<String>,
    events: Vec<serde_json::Value>,
    exemplars: Vec<String>,
    exposition: String,
}

/// Sends the same mix through a sidecar configured by `configure`: fast
/// 200s, 500s and one slow 200 without a parent, and fast 200s and 500s
/// under a sampled and an unsampled parent.
async fn run(configure: impl FnOnce(&mut Config)) -> Run {
    let ingest = SentryIngest::start(Ingest::Accept).await;
    let receiver = OtlpReceiver::grpc().await;
    let upstream = upstream().await;
    let mut config = with_sentry(&upstream.url(), &ingest.dsn());
    receiver.receive_every_span(&mut config);
    configure(&mut config);
    let sidecar = start_sidecar(config).await;
    for _ in 0..6 {
        call(&sidecar, "/200", None).await;
    }
    for _ in 0..2 {
        call(&sidecar, "/500", None).await;
    }
    call(&sidecar, "/slow", None).await;
    for (n, sampled) in [(1, true), (2, false)] {
        call(&sidecar, "/200", Some(parent(n, sampled))).await;
        call(&sidecar, "/500", Some(parent(n + 10, sampled))).await;
    }
    // The last exchange is recorded when its body ends, just after the client has it.
    let mut exposition = String::new();
    for _ in 0..50 {
        exposition = scrape(&sidecar, None).await.2;
        if value(
            &exposition,
            "http_requests_total{method=\"GET\",handler=\"other\",status=\"500\"}",
        ) == Some(4.0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sidecar.traces().unwrap().flush().await;
    sidecar.stop().await;
    let exported = receiver.spans().iter().map(|s| s.trace_id()).collect();
    Run {
        exported,
        events: ingest.events(),
        exemplars: exemplar_trace_ids(&exposition),
        exposition,
    }
}

impl Run {
    /// The trace id each Sentry event links to, if it links to one.
    fn event_traces(&self) -> Vec<Option<String>> {
        self.events
            .iter()
            .map(|e| {
                e["contexts"]["trace"]["trace_id"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }

    /// The claim of this file: no Sentry event and no exemplar names a
    /// trace that was not exported.
    fn assert_every_link_is_exported(&self) {
        assert_eq!(
            self.events.len(),
            4,
            "one event per 500: {:#?}",
            self.events
        );
        for trace in self.event_traces().into_iter().flatten() {
            assert!(
                self.exported.contains(&trace),
                "Sentry event names trace {trace}, not exported"
            );
        }
        assert!(!self.exemplars.is_empty(), "{}", self.exposition);
        for trace in &self.exemplars {
            assert!(
                self.exported.contains(trace),
                "exemplar names trace {trace}, not exported: {}",
                self.exposition
            );
        }
    }
}

#[tokio::test]
async fn always_on_links_every_event_and_exemplar_to_an_exported_trace() {
    let run = run(|c| c.tracing.sampler = Sampler::AlwaysOn).await;
    run.assert_every_link_is_exported();
    assert!(run.event_traces().iter().all(Option::is_some));
    assert_eq!(run.exported.len(), 13, "every exchange's trace");
}

#[tokio::test]
async fn a_head_ratio_links_only_sampled_traces() {
    let run = run(|c| {
        c.tracing.sampler = Sampler::ParentbasedTraceidratio;
        c.tracing.ratio = 0.0;
    })
    .await;
    run.assert_every_link_is_exported();
    // Only the two exchanges under the sampled parent were exported; the
    // events of the other three 500s name no trace.
    assert_eq!(run.exported.len(), 2, "{:?}", run.exported);
    let linked: Vec<_> = run.event_traces().into_iter().flatten().collect();
    assert_eq!(linked, vec![parent(11, true)[3..35].to_owned()]);
}

#[tokio::test]
async fn outcome_keeps_failures_slow_and_sampled_parents_and_links_them() {
    let run = run(|c| {
        c.tracing.sampler = Sampler::Outcome;
        c.tracing.outcome.ratio = 0.0;
        c.tracing.outcome.slower_than = SLOWER_THAN;
    })
    .await;
    run.assert_every_link_is_exported();
    assert!(
        run.event_traces().iter().all(Option::is_some),
        "every 500 is kept, so every event links: {:#?}",
        run.events
    );
    let series = |decision: &str, reason: &str| {
        let series =
            format!("sidecar_traces_sampled_total{{decision=\"{decision}\",reason=\"{reason}\"}}");
        value(&run.exposition, &series).unwrap_or_else(|| panic!("{series} in {}", run.exposition))
    };
    assert_eq!(series("kept", "error"), 4.0);
    assert_eq!(series("kept", "parent"), 1.0, "the sampled parent's 200");
    assert_eq!(series("kept", "ratio"), 0.0);
    // The slow one is kept for it; a fast one only on a machine stalled past SLOWER_THAN.
    let slow = series("kept", "slow");
    assert!(slow >= 1.0);
    assert_eq!(
        series("dropped", "ratio") + slow,
        8.0,
        "seven fast 200s and the slow one"
    );
    assert_eq!(run.exported.len() as f64, 5.0 + slow);
}

#[tokio::test]
async fn outcome_thresholds_follow_the_route_and_the_first_token() {
    let mock = mock_ollama(Duration::ZERO, Duration::from_millis(300)).await;
    let receiver = OtlpReceiver::grpc().await;
    let mut config = test_config(&mock.url());
    receiver.receive_every_span(&mut config);
    config.tracing.sampler = Sampler::Outcome;
    config.tracing.outcome.ratio = 0.0;
    config.tracing.outcome.slower_than = Duration::from_secs(3600);
    config.tracing.outcome.routes = vec![OutcomeRoute {
        name: "/api/chat".into(),
        slower_than: None,
        ttft_slower_than: Some(Duration::from_millis(100)),
    }];
    let sidecar = start_sidecar(config).await;
    for path in ["/api/chat", "/api/generate"] {
        // Streamed: the mock's first-token delay applies to streams.
        let body = r#"{"model":"m","prompt":"p","messages":[{"role":"user","content":"hi"}],"options":{"num_predict":2}}"#;
        let req = Request::post(format!("http://{}{path}", sidecar.proxy_addr()))
            .body(full(body))
            .unwrap();
        send(&client(), req).await;
    }
    // Recorded when the body ends, just after the client has it.
    let mut exposition = String::new();
    for _ in 0..50 {
        exposition = scrape(&sidecar, None).await.2;
        let dropped = "sidecar_traces_sampled_total{decision=\"dropped\",reason=\"ratio\"}";
        if value(&exposition, dropped) == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sidecar.traces().unwrap().flush().await;
    sidecar.stop().await;
    let spans = receiver.wait_for(2).await;
    let routes: HashSet<_> = spans
        .iter()
        .filter_map(|s| s.str_attr("http.route"))
        .collect();
    assert_eq!(
        routes,
        HashSet::from(["/api/chat".to_owned()]),
        "only the route with a first-token threshold keeps its slow first token"
    );
    let kept_slow = "sidecar_traces_sampled_total{decision=\"kept\",reason=\"slow\"}";
    assert_eq!(value(&exposition, kept_slow), Some(1.0), "{exposition}");
}

/// The `traceparent` the upstream received for one exchange.
async fn upstream_traceparent(configure: impl FnOnce(&mut Config), parent: Option<&str>) -> String {
    let receiver = OtlpReceiver::grpc().await;
    let up = mirror().await;
    let mut config = test_config(&up.url());
    receiver.receive_every_span(&mut config);
    config.tracing.sampler = Sampler::Outcome;
    config.tracing.outcome.ratio = 0.0;
    configure(&mut config);
    let sidecar = start_sidecar(config).await;
    let mut req = Request::get(format!("http://{}/x", sidecar.proxy_addr()));
    if let Some(parent) = parent {
        req = req.header("traceparent", parent);
    }
    let (_, body) = send(&client(), req.body(full("")).unwrap()).await;
    sidecar.stop().await;
    json_body(&body)["headers"]["traceparent"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn sampled_flag(traceparent: &str) -> bool {
    let flags = u8::from_str_radix(&traceparent[53..55], 16).unwrap();
    flags & 1 == 1
}

#[tokio::test]
async fn the_upstream_sampled_flag_is_the_configured_one() {
    let ratio = |c: &mut Config| c.tracing.outcome.upstream_sampled = UpstreamSampled::Ratio;
    let always = |c: &mut Config| c.tracing.outcome.upstream_sampled = UpstreamSampled::Always;
    assert!(!sampled_flag(&upstream_traceparent(ratio, None).await));
    assert!(sampled_flag(&upstream_traceparent(always, None).await));
    // A sampled parent is honoured at arrival, so the upstream is told.
    let sampled = parent(3, true);
    assert!(sampled_flag(
        &upstream_traceparent(ratio, Some(&sampled)).await
    ));
    let ignore_parent = |c: &mut Config| c.tracing.outcome.honour_parent = false;
    assert!(!sampled_flag(
        &upstream_traceparent(ignore_parent, Some(&sampled)).await
    ));
}
