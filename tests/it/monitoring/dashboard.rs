//! The Grafana dashboard against what it shows: its datasources are
//! variables (it imports into any Grafana), every PromQL target is filtered
//! by the job, namespace, instance and service variables, the series Tempo
//! writes carry the labels tempo.yaml gives them, and every panel the
//! traffic of the agent topology fills has data in a real Prometheus that
//! scrapes two running sidecars and evaluates the recording rules. And the
//! stack behind it: images pinned, memory limited, health checked, every
//! store with a retention.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use serde_json::Value;

use super::{compose_services, instant_mock_ollama, query, start_prometheus_labelled};
use crate::support::*;

const DASHBOARD: &str = "monitoring/grafana/dashboards/otel-sidecar.json";

/// The datasource variables, by datasource type.
const SOURCES: [(&str, &str); 3] = [
    ("prometheus", "${datasource}"),
    ("loki", "${loki_datasource}"),
    ("tempo", "${tempo_datasource}"),
];

fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD)).unwrap()
}

fn yaml(path: &str) -> Value {
    let script = "import json, sys, yaml\n\
                  json.dump(yaml.safe_load(sys.stdin), sys.stdout, default=str)";
    let json = crate::tools::python_filter(&["yaml"], script, &read(path))
        .unwrap_or_else(|e| panic!("{path} is not YAML: {e}"));
    serde_json::from_str(&json).unwrap()
}

/// A panel's query: the panel's title, the datasource type, the target.
struct Target {
    panel: String,
    source: String,
    target: Value,
}

impl Target {
    fn expr(&self) -> &str {
        self.target["expr"].as_str().unwrap_or_default()
    }
}

fn targets(dashboard: &Value) -> Vec<Target> {
    let mut out = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    // Collapsed rows hold their panels.
    while let Some(panel) = panels.pop() {
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        for target in panel["targets"].as_array().into_iter().flatten() {
            let source = target["datasource"]["type"]
                .as_str()
                .or(panel["datasource"]["type"].as_str())
                .unwrap_or_else(|| panic!("{}: no datasource", panel["title"]));
            out.push(Target {
                panel: panel["title"].as_str().unwrap().to_owned(),
                source: source.to_owned(),
                target: target.clone(),
            });
        }
    }
    out
}

/// A PromQL expression's vector selectors (metric name, the text between
/// the braces) and the label names it groups by. As far as the dashboard's
/// expressions go: strings, ranges and groupings respected.
#[derive(Debug, Default)]
struct PromQl {
    selectors: Vec<(String, String)>,
    grouping: BTreeSet<String>,
}

impl PromQl {
    fn parse(expr: &str) -> Self {
        let chars: Vec<char> = expr.chars().collect();
        let mut parsed = PromQl::default();
        // Up to the closing `close`, strings skipped; returns the inside.
        let enclosed = |start: usize, close: char| -> (String, usize) {
            let (mut i, mut quoted) = (start + 1, false);
            while i < chars.len() {
                match chars[i] {
                    '\\' if quoted => i += 1,
                    '"' => quoted = !quoted,
                    c if c == close && !quoted => break,
                    _ => {}
                }
                i += 1;
            }
            assert!(i < chars.len(), "unclosed {close}: {expr}");
            (chars[start + 1..i].iter().collect(), i + 1)
        };
        let next_nonspace = |mut i: usize| {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            i
        };
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '"' {
                i = enclosed(i, '"').1;
            } else if c == '[' {
                i = enclosed(i, ']').1;
            } else if c == '{' {
                let (inside, end) = enclosed(i, '}');
                parsed.selectors.push((String::new(), inside));
                i = end;
            } else if c.is_ascii_digit() {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let ident: String = chars[start..i].iter().collect();
                let j = next_nonspace(i);
                let next = chars.get(j).copied();
                match ident.as_str() {
                    "by" | "without" | "on" | "ignoring" | "group_left" | "group_right" => {
                        let (inside, end) = enclosed(j, ')');
                        parsed
                            .grouping
                            .extend(inside.split(',').map(|l| l.trim().to_owned()));
                        i = end;
                    }
                    "and" | "or" | "unless" | "bool" | "offset" => {}
                    // Aggregations, also as `sum by (...) (...)`.
                    "sum" | "avg" | "min" | "max" | "count" | "count_values" | "topk"
                    | "bottomk" | "quantile" | "stddev" | "stdvar" | "group" => {}
                    _ if next == Some('(') => {} // a function or aggregation
                    _ if next == Some('{') => {
                        let (inside, end) = enclosed(j, '}');
                        parsed.selectors.push((ident, inside));
                        i = end;
                    }
                    _ => parsed.selectors.push((ident, String::new())),
                }
            } else {
                i += 1;
            }
        }
        parsed
    }

    /// The label names the selectors match on.
    fn matched_labels(&self) -> BTreeSet<String> {
        self.selectors
            .iter()
            .flat_map(|(_, inside)| split_matchers(inside))
            .map(|m| m.split(['=', '!', '~']).next().unwrap().trim().to_owned())
            .collect()
    }
}

/// `a="x", b=~"y,z"` into its matchers (commas inside quotes kept).
fn split_matchers(inside: &str) -> Vec<String> {
    let (mut out, mut current, mut quoted) = (Vec::new(), String::new(), false);
    for c in inside.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current);
    out.into_iter()
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

/// The matchers each kind of series must have. Scraped series carry the
/// target's job, namespace, instance and service. Recording rules aggregate
/// instances away and keep namespace, job and service. Tempo's span metrics
/// and service graph are remote-written by Tempo: no scrape job or instance,
/// the span's service.name as `service` and namespace from tempo.yaml.
fn required_matchers(metric: &str) -> &'static [&'static str] {
    if metric.contains(':') {
        &[
            r#"namespace=~"$namespace""#,
            r#"job=~"$job""#,
            r#"service=~"$service""#,
        ]
    } else if metric.starts_with("traces_") {
        &[r#"namespace=~"$namespace""#, r#"service=~"$service""#]
    } else {
        &[
            r#"job=~"$job""#,
            r#"namespace=~"$namespace""#,
            r#"instance=~"$instance""#,
            r#"service=~"$service""#,
        ]
    }
}

#[test]
fn datasources_are_variables_and_every_promql_target_is_filtered_by_the_variables() {
    let dashboard = dashboard();
    // No uid but the variables', wherever a datasource is named.
    fn walk(value: &Value, path: &str, found: &mut Vec<(String, String, String)>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    let here = format!("{path}/{key}");
                    if key == "datasource" && v.is_object() {
                        found.push((
                            here,
                            v["type"].as_str().unwrap_or_default().to_owned(),
                            v["uid"].as_str().unwrap_or_default().to_owned(),
                        ));
                    } else if key == "datasourceUid" || (key == "uid" && !path.is_empty()) {
                        panic!("{here}: a datasource uid outside the variables: {v}");
                    } else {
                        walk(v, &here, found);
                    }
                }
            }
            Value::Array(items) => {
                for (n, v) in items.iter().enumerate() {
                    walk(v, &format!("{path}/{n}"), found);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(&dashboard, "", &mut found);
    assert!(found.len() > 30, "{found:?}");
    let sources: BTreeMap<&str, &str> = SOURCES.into_iter().collect();
    for (path, kind, uid) in &found {
        assert_eq!(
            sources.get(kind.as_str()),
            Some(&uid.as_str()),
            "{path}: datasource {kind} {uid}"
        );
    }
    let variables: BTreeMap<&str, &Value> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    for (kind, reference) in SOURCES {
        let name = &reference[2..reference.len() - 1];
        let variable = variables[name];
        assert_eq!(variable["type"], "datasource", "{name}");
        assert_eq!(variable["query"], kind, "{name}");
    }
    for name in ["job", "namespace", "instance", "service"] {
        let variable = variables[name];
        assert_eq!(variable["type"], "query", "{name}");
        assert_eq!(variable["multi"], true, "{name}");
        assert_eq!(variable["includeAll"], true, "{name}");
        assert_eq!(
            variable["allValue"], ".*",
            "{name}: All must also match series without the label"
        );
        let definition = variable["definition"].as_str().unwrap();
        assert!(
            definition.starts_with("label_values(http_requests_total")
                && definition.ends_with(&format!(", {name})")),
            "{name}: {definition}"
        );
    }

    let mut promql = 0;
    for target in targets(&dashboard) {
        let (panel, expr) = (&target.panel, target.expr());
        match target.source.as_str() {
            "prometheus" => {
                promql += 1;
                let parsed = PromQl::parse(expr);
                assert!(!parsed.selectors.is_empty(), "{panel}: {expr}");
                for (metric, inside) in &parsed.selectors {
                    assert!(!metric.is_empty(), "{panel}: a selector without a name");
                    let matchers = split_matchers(inside);
                    for required in required_matchers(metric) {
                        // The per-agent-request ratios divide by the agent side's requests.
                        let agent = required.starts_with("service=")
                            && matchers.iter().any(|m| m == r#"service="$agent""#);
                        assert!(
                            agent || matchers.iter().any(|m| m == required),
                            "{panel}: {metric} lacks {required}: {expr}"
                        );
                    }
                }
            }
            "loki" => assert!(
                expr.starts_with(r#"{service_name=~"$service"}"#),
                "{panel}: Loki's label for service.name: {expr}"
            ),
            "tempo" => {
                let query = target.target["query"]
                    .as_str()
                    .or(target.target["serviceMapQuery"].as_str())
                    .unwrap_or_default();
                assert!(query.contains("${service:regex}"), "{panel}: {query}");
            }
            other => panic!("{panel}: datasource type {other}"),
        }
    }
    assert!(promql >= 25, "only {promql} PromQL targets");
}

/// The series Tempo writes: the processors that make them are on, they go
/// to the Prometheus the dashboard reads (which accepts remote writes), and
/// the labels the dashboard uses on them are ones Tempo gives them.
#[test]
fn tempo_series_use_the_labels_tempo_yaml_makes() {
    let tempo = yaml("monitoring/tempo/tempo.yaml");
    let generator = &tempo["metrics_generator"];
    let processors = &tempo["overrides"]["defaults"]["metrics_generator"]["processors"];
    for processor in ["service-graphs", "span-metrics"] {
        assert!(
            processors
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == processor),
            "{processor} off: {processors}"
        );
    }
    let write = generator["storage"]["remote_write"][0]["url"]
        .as_str()
        .unwrap();
    assert_eq!(write, "http://prometheus:9090/api/v1/write");
    let compose = compose_services(&read("monitoring/docker-compose.yml"));
    assert!(
        compose["prometheus"]
            .iter()
            .any(|l| l == "- --web.enable-remote-write-receiver"),
        "Prometheus refuses Tempo's remote writes"
    );
    // Tempo 3 retains in the backend worker (no compactor any more).
    for path in [
        &tempo["backend_worker"]["compaction"]["block_retention"],
        &tempo["backend_scheduler"]["provider"]["compaction"]["compaction"]["block_retention"],
    ] {
        assert_eq!(path, "168h");
    }

    let span_metrics = &generator["processor"]["span_metrics"];
    // Intrinsic dimensions, then the configured ones (dots become
    // underscores), then the renamed ones.
    let mut labels: BTreeSet<String> = ["service", "span_name", "span_kind", "status_code", "le"]
        .map(String::from)
        .into();
    for dimension in span_metrics["dimensions"].as_array().unwrap() {
        labels.insert(dimension.as_str().unwrap().replace('.', "_"));
    }
    for mapping in span_metrics["dimension_mappings"].as_array().unwrap() {
        labels.insert(mapping["name"].as_str().unwrap().to_owned());
    }
    let dashboard = dashboard();
    let mut checked = 0;
    for target in targets(&dashboard) {
        let expr = target.expr();
        if !expr.contains("traces_spanmetrics_") {
            continue;
        }
        checked += 1;
        let parsed = PromQl::parse(expr);
        for label in parsed.matched_labels().union(&parsed.grouping) {
            assert!(
                labels.contains(label),
                "{}: {label} is not a label of Tempo's span metrics ({labels:?})",
                target.panel
            );
        }
    }
    assert!(checked > 0, "no panel reads the span metrics");
    let graph = targets(&dashboard)
        .into_iter()
        .find(|t| t.target["queryType"] == "serviceMap")
        .expect("a service graph panel");
    assert_eq!(graph.source, "tempo");

    // Provisioning is where the uids are: exemplars open Tempo, Tempo's
    // service map reads Prometheus.
    let datasources = yaml("monitoring/grafana/provisioning/datasources/datasources.yml");
    let of_type = |kind: &str| {
        datasources["datasources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["type"] == kind)
            .unwrap()
            .clone()
    };
    let (prometheus, tempo_source) = (of_type("prometheus"), of_type("tempo"));
    assert_eq!(
        prometheus["jsonData"]["exemplarTraceIdDestinations"][0]["datasourceUid"],
        tempo_source["uid"]
    );
    assert_eq!(
        tempo_source["jsonData"]["serviceMap"]["datasourceUid"],
        prometheus["uid"]
    );
}

/// Grafana's variables as the test sets them: every sidecar, the agent side
/// by its name, one-minute rate windows (the scrape interval is a second).
fn substitute(expr: &str) -> String {
    let mut out = expr.to_owned();
    for (name, value) in [
        ("__rate_interval", "1m"),
        ("__interval", "15s"),
        ("__range", "1h"),
        ("__auto", "1m"),
        ("agent", "agent-api"),
        ("job", ".*"),
        ("namespace", ".*"),
        ("instance", ".*"),
        ("service", ".*"),
    ] {
        out = out
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    assert!(!out.contains('$'), "a variable left: {out}");
    out
}

/// Panels that stay empty here, and why.
const EMPTY_HERE: [&str; 1] = [
    // Written by Tempo's metrics generator from the spans; no Tempo runs here.
    "Finish reasons by model (Tempo span metrics)",
];

#[tokio::test]
async fn every_panel_the_traffic_fills_has_data_in_a_real_prometheus() {
    let mock = instant_mock_ollama().await;
    let model_side = start_sidecar(test_config(&mock.url())).await;
    // The agent: fine, except /slow, which outlasts the sidecar's timeout.
    let agent = TestUpstream::start(|req| async move {
        if req.uri().path() == "/slow" {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        Response::builder()
            .body(full(Bytes::from_static(b"{}")))
            .unwrap()
    })
    .await;
    let mut config = test_config(&agent.url());
    config.upstream.response_timeout = Duration::from_millis(200);
    config.listener.max_request_body = Some(otel_sidecar::config::ByteSize(1024));
    // The agent side keeps its failures and a ratio of the rest: the
    // sampling panel's series exist only under the outcome sampler.
    let receiver = crate::otlp::OtlpReceiver::grpc().await;
    receiver.receive_every_span(&mut config);
    config.tracing.sampler = otel_sidecar::config::Sampler::Outcome;
    let agent_side = start_sidecar(config).await;
    let prometheus = start_prometheus_labelled(&[
        (
            agent_side.admin_addr(),
            vec![("service", "agent-api"), ("namespace", "agent-loop")],
        ),
        (
            model_side.admin_addr(),
            vec![("service", "ollama"), ("namespace", "agent-loop")],
        ),
    ]);

    let dashboard = dashboard();
    let promql: Vec<(String, String)> = targets(&dashboard)
        .into_iter()
        .filter(|t| t.source == "prometheus")
        .map(|t| (t.panel.clone(), substitute(t.expr())))
        .collect();
    let titles: BTreeSet<&str> = promql.iter().map(|(p, _)| p.as_str()).collect();
    for panel in EMPTY_HERE {
        assert!(titles.contains(panel), "no panel {panel}");
    }

    let client = client();
    let (agent_base, model_base) = (
        format!("http://{}", agent_side.proxy_addr()),
        format!("http://{}", model_side.proxy_addr()),
    );
    let mut empty: BTreeSet<(String, String)> = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(50);
    while Instant::now() < deadline {
        // The agent's requests, one refused (413) and one timed out (504).
        for _ in 0..2 {
            send(&client, get(format!("{agent_base}/agent/run"))).await;
        }
        send(
            &client,
            Request::post(format!("{agent_base}/agent/run"))
                .body(full(vec![b'x'; 4096]))
                .unwrap(),
        )
        .await;
        send(&client, get(format!("{agent_base}/slow"))).await;
        // Its model calls: a streamed generate (time to first token), a chat,
        // a chat whose model calls a tool.
        for (path, body) in [
            (
                "/api/chat",
                r#"{"model":"gemma3n:e2b","messages":[{"role":"user","content":"weather in Paris"}],"stream":false,"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}"#,
            ),
            (
                "/api/generate",
                r#"{"model":"gemma3n:e2b","prompt":"a b","options":{"num_predict":3}}"#,
            ),
            (
                "/api/chat",
                r#"{"model":"gemma3n:e2b","messages":[{"role":"user","content":"x"}],"stream":false}"#,
            ),
        ] {
            send(
                &client,
                Request::post(format!("{model_base}{path}"))
                    .body(full(body))
                    .unwrap(),
            )
            .await;
        }
        empty.clear();
        for (panel, expr) in &promql {
            if query(&prometheus, expr).await.is_empty() {
                empty.insert((panel.clone(), expr.clone()));
            }
        }
        if empty.iter().all(|(p, _)| EMPTY_HERE.contains(&p.as_str())) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let unexpected: Vec<_> = empty
        .iter()
        .filter(|(p, _)| !EMPTY_HERE.contains(&p.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "panels without data after 50 s: {unexpected:#?}"
    );
    agent_side.stop().await;
    model_side.stop().await;
    mock.stop();
}

/// The stack as docker-compose resolves it (anchors merged, every profile).
fn resolved_compose() -> Value {
    let text = crate::tools::run(
        "docker-compose",
        &[
            "-f",
            "docker-compose.yml",
            "--profile",
            "file-logs",
            "config",
        ],
        &repo("monitoring"),
    );
    let script = "import json, sys, yaml\n\
                  json.dump(yaml.safe_load(sys.stdin), sys.stdout, default=str)";
    serde_json::from_str(&crate::tools::python_filter(&["yaml"], script, &text).unwrap()).unwrap()
}

/// Reproducible and bounded: each image pinned by digest with its tag in
/// a comment, each service with a memory limit and a healthcheck.
#[test]
fn every_service_is_pinned_limited_and_checked() {
    let compose = resolved_compose();
    let text = read("monitoring/docker-compose.yml");
    let services = compose["services"].as_object().unwrap();
    assert!(services.len() >= 10, "{:?}", services.keys());
    for (name, service) in services {
        let image = service["image"].as_str().unwrap();
        assert!(service["mem_limit"].is_string(), "{name}: no memory limit");
        // The collector's image is FROM scratch with no probe subcommand
        // (monitoring/README.md, Health checks).
        if name != "otel-collector" {
            let test = &service["healthcheck"]["test"];
            assert_eq!(test[0], "CMD", "{name}: exec form, no shell needed");
        }
        if service.get("build").is_some() || image.starts_with("python:") {
            continue; // built here; the example agent's floating tag (README)
        }
        let (reference, digest) = image
            .split_once("@sha256:")
            .unwrap_or_else(|| panic!("{name}: {image} is not pinned by digest"));
        assert_eq!(digest.len(), 64, "{name}: {image}");
        assert!(
            text.contains(&format!("# {reference}")),
            "{name}: the tag in a comment above the pin"
        );
    }
}

/// Each store deletes what is older than its retention: Prometheus by time
/// and size, Loki through its compactor (a retention period alone only
/// limits queries), Tempo in the backend worker (checked with its metrics
/// generator above).
#[test]
fn every_store_has_a_retention() {
    let compose = resolved_compose();
    let command: Vec<&str> = compose["services"]["prometheus"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for flag in [
        "--storage.tsdb.retention.time=",
        "--storage.tsdb.retention.size=",
    ] {
        assert!(
            command.iter().any(|c| c.starts_with(flag)),
            "prometheus: {flag} in {command:?}"
        );
    }
    let loki = yaml("monitoring/loki/loki-config.yaml");
    assert_eq!(loki["compactor"]["retention_enabled"], true);
    assert_eq!(loki["compactor"]["delete_request_store"], "filesystem");
    assert_eq!(loki["limits_config"]["retention_period"], "168h");
    assert!(
        loki["compactor"]["working_directory"]
            .as_str()
            .unwrap()
            .starts_with(loki["common"]["path_prefix"].as_str().unwrap()),
        "the compactor works on Loki's volume"
    );
}
