//! The monitoring assets work with the sidecar they describe: promtool
//! validates the rules and runs their unit tests, a real Prometheus scrapes a
//! running sidecar and evaluates the recording rules, every metric the
//! dashboard and rules query exists, and the compose file is complete.
//! `otlp_stack` checks how the stack carries the signals over OTLP: the
//! sidecars to the collector, the collector to Tempo, Loki and Prometheus,
//! the file-based log alternative, and Grafana's log queries and trace links.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};

use otel_sidecar::config::load_str;

use crate::metrics::scrape;
use crate::support::*;

use crate::tools::run;

mod dashboard;
mod otlp_stack;
mod tls;

#[test]
fn promtool_validates_config_and_rules_and_runs_their_unit_tests() {
    let dir = repo("monitoring/prometheus");
    run("promtool", &["check", "config", "prometheus.yml"], &dir);
    let rules = run("promtool", &["check", "rules", "rules/slo.yml"], &dir);
    assert!(rules.contains("SUCCESS"), "{rules}");
    let files = rule_test_files();
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(String::as_str));
    let tests = run("promtool", &args, &dir.join("rules"));
    assert_eq!(
        tests.matches("SUCCESS").count(),
        files.len(),
        "{files:?}: {tests}"
    );
}

/// Every promtool test file beside the rules (`*_test.yml`), so a file split
/// off later runs too.
fn rule_test_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo("monitoring/prometheus/rules"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with("_test.yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    files
}

/// An alerting rule of slo.yml, as far as routing needs it.
#[derive(Debug, Default)]
struct Alert {
    name: String,
    severity: Option<String>,
    runbook_url: Option<String>,
}

/// The alerts of a rules file in this repository's layout: `- alert:` opens
/// one, `- record:` ends it, its labels and annotations are `key: value`
/// lines (no YAML parser: the repository has none and needs none).
fn alerts(rules: &str) -> Vec<Alert> {
    let mut alerts: Vec<Alert> = Vec::new();
    let mut open = false;
    for line in rules.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- alert: ") {
            alerts.push(Alert {
                name: name.to_owned(),
                ..Alert::default()
            });
            open = true;
        } else if line.starts_with("- record: ") {
            open = false;
        } else if let (true, Some(alert)) = (open, alerts.last_mut()) {
            if let Some(severity) = line.strip_prefix("severity: ") {
                alert.severity = Some(severity.to_owned());
            } else if let Some(url) = line.strip_prefix("runbook_url: ") {
                alert.runbook_url = Some(url.to_owned());
            }
        }
    }
    alerts
}

/// The anchor GitHub gives a Markdown heading: lowercase, punctuation other
/// than `-` and `_` removed, spaces made `-`.
fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The on-call reads the alert's runbook section, and Alertmanager routes on
/// its severity: each alert needs both, and a promtool case where it fires
/// (with the labels it routes on) and one where it does not.
#[test]
fn every_alert_has_a_severity_a_runbook_section_and_tests_both_ways() {
    let rules = read("monitoring/prometheus/rules/slo.yml");
    let runbook = read("monitoring/RUNBOOK.md");
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| github_anchor(h.trim_start_matches('#')))
        .collect();
    let tests: String = rule_test_files()
        .iter()
        .map(|f| read(&format!("monitoring/prometheus/rules/{f}")))
        .collect();
    let alerts = alerts(&rules);
    assert!(alerts.len() >= 17, "{alerts:#?}");
    let runbook_base =
        "https://github.com/otel-sidecar/otel-sidecar/blob/main/monitoring/RUNBOOK.md#";
    for alert in &alerts {
        let name = &alert.name;
        let severity = alert.severity.as_deref();
        assert!(
            matches!(severity, Some("page" | "ticket" | "warning")),
            "{name}: severity {severity:?}"
        );
        let url = alert.runbook_url.as_deref().unwrap_or_default();
        let anchor = url
            .strip_prefix(runbook_base)
            .unwrap_or_else(|| panic!("{name}: runbook_url {url:?} is not in RUNBOOK.md"));
        assert!(
            anchors.contains(anchor),
            "{name}: RUNBOOK.md has no heading #{anchor}"
        );
        let (mut firing, mut silent) = (0, 0);
        let lines: Vec<&str> = tests.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            if *line != format!("alertname: {name}") {
                continue;
            }
            match lines.get(i + 1) {
                Some(&"exp_alerts: []") => silent += 1,
                Some(&"exp_alerts:") => {
                    firing += 1;
                    let labels = lines[i + 2].strip_prefix("- exp_labels: ").unwrap();
                    assert!(
                        labels.contains(&format!("severity: {}", severity.unwrap())),
                        "{name}: {labels}"
                    );
                    // Nothing to route on when no sidecar is scraped at all.
                    if name != "OtelSidecarNoTargets" {
                        for key in ["job: ", "service: "] {
                            assert!(labels.contains(key), "{name} loses {key}: {labels}");
                        }
                    }
                }
                other => panic!("{name}: {other:?} after its alertname"),
            }
        }
        assert!(
            firing > 0 && silent > 0,
            "{name}: {firing} firing and {silent} silent promtool cases"
        );
    }
}

#[test]
fn compose_file_is_valid_and_everything_it_mounts_exists() {
    let dir = repo("monitoring");
    run(
        "docker-compose",
        &["-f", "docker-compose.yml", "config", "-q"],
        &dir,
    );
    let compose = std::fs::read_to_string(dir.join("docker-compose.yml")).unwrap();
    let mut referenced = 0;
    for line in compose.lines().map(str::trim) {
        let path = if let Some(volume) = line
            .strip_prefix("- ./")
            .or_else(|| line.strip_prefix("- ../"))
        {
            let prefix = if line.starts_with("- ../") {
                "../"
            } else {
                "./"
            };
            format!("{prefix}{}", volume.split(':').next().unwrap())
        } else if let Some(context) = line.strip_prefix("context: ") {
            context.to_owned()
        } else if let Some(file) = line.strip_prefix("dockerfile: ") {
            format!("../{file}")
        } else {
            continue;
        };
        assert!(
            dir.join(&path).exists(),
            "docker-compose.yml references missing {path}"
        );
        referenced += 1;
    }
    assert!(referenced >= 10, "only {referenced} paths found");
}

/// The services of docker-compose.yml, each with its lines, trimmed. A reader
/// for this file's layout (services as two-space keys under `services:`), not
/// for YAML at large: the repository has no YAML parser and needs none.
fn compose_services(compose: &str) -> BTreeMap<String, Vec<String>> {
    let mut services = BTreeMap::new();
    let mut current = None;
    let mut in_services = false;
    for line in compose.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            in_services = line == "services:";
            current = None;
        } else if let Some(name) = line
            .strip_prefix("  ")
            .and_then(|l| l.strip_suffix(':'))
            .filter(|name| in_services && !name.starts_with(' '))
        {
            current = Some(name.to_owned());
            // docker-compose v1 keeps the last of two equal keys; v2 refuses the file.
            let earlier = services.insert(name.to_owned(), Vec::new());
            assert!(earlier.is_none(), "service {name} defined twice");
        } else if let Some(name) = &current {
            if let Some(lines) = services.get_mut(name) {
                lines.push(line.trim().to_owned());
            }
        }
    }
    services
}

/// The value of `key: value` among a service's lines, without a trailing comment.
fn setting<'a>(lines: &'a [String], key: &str) -> Option<&'a str> {
    lines.iter().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        Some(value.split(" #").next().unwrap().trim().trim_matches('"'))
    })
}

/// `host:port` scrape targets of prometheus.yml with their `service` label.
fn scrape_targets(prometheus: &str) -> BTreeMap<String, String> {
    let mut targets = BTreeMap::new();
    let mut target = None;
    for line in prometheus.lines().map(str::trim) {
        if let Some(list) = line.strip_prefix("- targets: [\"") {
            target = Some(list.trim_end_matches("\"]").to_owned());
        } else if let Some(service) = line.strip_prefix("service: ") {
            let t = target.take().expect("a service label follows its target");
            targets.insert(t, service.to_owned());
        }
    }
    targets
}

fn host_port(url: &str) -> (String, u16) {
    let uri: http::Uri = url.parse().unwrap_or_else(|e| panic!("{url}: {e}"));
    (uri.host().unwrap().to_owned(), uri.port_u16().unwrap())
}

/// The agent topology as shipped: clients -> agent-sidecar -> agent ->
/// ollama-sidecar -> ollama, each sidecar with its own config file, scraped
/// by Prometheus and labelled for the file-based log alternative under its
/// service.name.
#[test]
fn compose_runs_the_agent_between_two_sidecars_that_prometheus_tells_apart() {
    let dir = repo("monitoring");
    let compose = std::fs::read_to_string(dir.join("docker-compose.yml")).unwrap();
    let services = compose_services(&compose);
    let prometheus = std::fs::read_to_string(dir.join("prometheus/prometheus.yml")).unwrap();
    let targets = scrape_targets(&prometheus);
    let mut sidecars = BTreeMap::new();
    for (name, lines) in &services {
        let Some(path) = setting(lines, "SIDECAR_CONFIG") else {
            continue;
        };
        let mounted = lines
            .iter()
            .find_map(|l| l.strip_prefix("- ./")?.strip_suffix(&format!(":{path}:ro")))
            .unwrap_or_else(|| panic!("{name}: SIDECAR_CONFIG {path} is not mounted"));
        assert!(mounted.starts_with("sidecar/"), "{name}: {mounted}");
        let text = std::fs::read_to_string(dir.join(mounted)).unwrap();
        let config = load_str(&text, mounted, |_| None).unwrap_or_else(|e| panic!("{e}"));
        let service = config.service.name.clone();
        let admin = config.admin.address;
        assert!(
            admin.ip().is_unspecified(),
            "{name}: Prometheus cannot reach {admin}"
        );
        assert_eq!(admin.port(), 9901, "{name}: 9090 is Prometheus' own port");
        assert_eq!(
            targets.get(&format!("{name}:9901")),
            Some(&service),
            "{name}: scraped with service=\"{service}\": {targets:?}"
        );
        assert_eq!(
            setting(lines, "otel-sidecar.service"),
            Some(service.as_str()),
            "{name}: the label Alloy (the file-based log alternative) discovers"
        );
        assert_eq!(
            host_port(
                &config
                    .otlp
                    .target(otel_sidecar::config::Signal::Traces, &config.tracing.otlp)
                    .url
            )
            .0,
            "otel-collector",
            "{name}"
        );
        sidecars.insert(name.clone(), config);
    }
    assert_eq!(sidecars.len(), 2, "{:?}", sidecars.keys());
    assert_eq!(
        targets.len(),
        2,
        "one scrape target per sidecar: {targets:?}"
    );
    let names: BTreeSet<&String> = sidecars.values().map(|c| &c.service.name).collect();
    assert_eq!(names.len(), 2, "the sidecars need distinct service names");

    let agent = services
        .iter()
        .find(|(_, lines)| lines.iter().any(|l| l.contains("examples/agent/agent.py:")))
        .map(|(name, _)| name.as_str())
        .expect("a service runs examples/agent/agent.py");
    assert!(
        setting(&services[agent], "ports").is_none(),
        "clients reach the agent only through its sidecar"
    );
    let ollama = services
        .iter()
        .find(|(_, lines)| setting(lines, "image").is_some_and(|i| i.starts_with("ollama/ollama:")))
        .map(|(name, _)| name.as_str())
        .expect("an ollama service");
    let (model_host, model_port) =
        host_port(setting(&services[agent], "OLLAMA_HOST").expect("the agent's OLLAMA_HOST"));
    let ollama_side = &sidecars
        .get(&model_host)
        .unwrap_or_else(|| panic!("OLLAMA_HOST names {model_host}, not a sidecar"));
    assert_eq!(model_port, ollama_side.listener.address.port());
    assert_eq!(ollama_side.upstream.url.host(), ollama);
    assert!(ollama_side.genai.enabled);
    let (agent_side_name, agent_side) = sidecars
        .iter()
        .find(|(_, c)| c.upstream.url.host() == agent)
        .expect("a sidecar in front of the agent");
    let published = format!("- \"8080:{}\"", agent_side.listener.address.port());
    assert!(
        services[agent_side_name]
            .iter()
            .any(|l| l.starts_with(&published)),
        "clients call the agent on :8080 through {agent_side_name}"
    );
}

/// Metric names a PromQL text uses: identifiers with a known prefix.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut word = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            if ["http_", "upstream_", "gen_ai_", "sidecar_", "process_"]
                .iter()
                .any(|p| word.starts_with(p))
            {
                names.insert(word.clone());
            }
            word.clear();
        }
    }
    names
}

/// Names of recording rules, which dashboards may use like metrics.
/// The mock Ollama answering at once: GenAI families fill without waiting.
pub(crate) async fn instant_mock_ollama() -> otel_sidecar::mock_ollama::MockOllama {
    mock_ollama(Duration::ZERO, Duration::ZERO).await
}

fn recorded(rules: &str) -> BTreeSet<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record: "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_metric_the_dashboard_and_rules_query_is_exposed() {
    // Traffic that makes every family appear: GenAI streams, errors, timeouts.
    let mock = instant_mock_ollama().await;
    let mut config = test_config(&mock.url());
    config.upstream.response_timeout = Duration::from_millis(300);
    config.listener.max_request_body = Some(otel_sidecar::config::ByteSize(1024));
    let sidecar = start_sidecar(config).await;
    let base = format!("http://{}", sidecar.proxy_addr());
    // Refused by the proxy itself: sidecar_proxy_errors_total.
    send(
        &client(),
        Request::post(format!("{base}/api/generate"))
            .body(full(vec![b'x'; 4096]))
            .unwrap(),
    )
    .await;
    for (path, body) in [
        (
            "/api/generate",
            r#"{"model":"m","prompt":"a b","options":{"num_predict":3}}"#,
        ),
        (
            "/api/chat",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":false}"#,
        ),
        // A tool call: gen_ai_response_tool_calls_total.
        (
            "/api/chat",
            r#"{"model":"m","messages":[{"role":"user","content":"weather in Paris"}],"stream":false,"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}"#,
        ),
    ] {
        send(
            &client(),
            Request::post(format!("{base}{path}"))
                .body(full(body))
                .unwrap(),
        )
        .await;
    }
    let stalled = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = test_config(&format!("http://{}", stalled.local_addr().unwrap()));
    config.upstream.response_timeout = Duration::from_millis(100);
    // Under the outcome sampler: sidecar_traces_sampled_total.
    let receiver = crate::otlp::OtlpReceiver::grpc().await;
    receiver.receive_every_span(&mut config);
    config.tracing.sampler = otel_sidecar::config::Sampler::Outcome;
    let failing = start_sidecar(config).await;
    send(&client(), get(format!("http://{}/x", failing.proxy_addr()))).await;

    let mut exposed = BTreeSet::new();
    for s in [&sidecar, &failing] {
        let text = scrape(s, None).await.2;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            exposed.insert(name.to_owned());
            // Label names count too: queries group and filter by them.
            if let Some(labels) = line
                .split_once('{')
                .and_then(|(_, rest)| rest.split_once('}'))
                .map(|(l, _)| l)
            {
                for pair in labels.split(',') {
                    exposed.insert(pair.split('=').next().unwrap().to_owned());
                }
            }
        }
    }
    let rules = std::fs::read_to_string(repo("monitoring/prometheus/rules/slo.yml")).unwrap();
    let dashboard =
        std::fs::read_to_string(repo("monitoring/grafana/dashboards/otel-sidecar.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let mut exprs = String::new();
    collect_exprs(&json, &mut exprs);
    // Series Tempo writes (span metrics, service graph) are not the
    // sidecar's: dashboard::tempo_series_use_the_labels_tempo_yaml_makes
    // checks those against tempo.yaml.
    let exprs: String = exprs
        .lines()
        .filter(|e| !e.contains("traces_"))
        .map(|e| format!("{e}\n"))
        .collect();
    let records = recorded(&rules);
    for name in metric_names(&rules).union(&metric_names(&exprs)) {
        let known = exposed.contains(name) || records.contains(name);
        assert!(
            known,
            "{name} is queried but not exposed; exposed: {exposed:#?}"
        );
    }
    // The dashboard shows what issue 4 asks for, with exemplars on latency panels.
    for needle in [
        "http_requests_in_flight",
        "upstream_errors_total",
        "gen_ai_server_time_to_first_token_seconds_bucket",
        "gen_ai_client_token_usage_sum",
        "sidecar_telemetry_dropped_total",
    ] {
        assert!(exprs.contains(needle), "dashboard lacks {needle}");
    }
    // Both sides of the agent topology: every query picks its sidecars by
    // the `service` label (the $service or $agent variable), so no panel
    // silently adds the agent's requests to its own model calls.
    let variables: Vec<&str> = json["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        variables,
        [
            "datasource",
            "loki_datasource",
            "tempo_datasource",
            "job",
            "namespace",
            "instance",
            "service",
            "agent"
        ]
    );
    for expr in exprs.lines() {
        assert!(
            expr.contains("$service") || expr.contains("$agent"),
            "not filtered by side: {expr}"
        );
    }
    assert!(
        dashboard.contains(r#"resource.service.name =~ \"${service:regex}\""#),
        "traces panel filtered by side"
    );
    assert!(dashboard.contains("\"exemplar\": true"));
    assert!(dashboard.contains("\"type\": \"tempo\""), "traces panel");
    sidecar.stop().await;
    failing.stop().await;
    mock.stop();
}

fn collect_exprs(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                if let (true, Some(text)) = (key == "expr", v.as_str()) {
                    out.push_str(text);
                    out.push('\n');
                }
                collect_exprs(v, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// A Prometheus server of our own, killed when dropped.
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Scrapes each target with its `service` label, as prometheus.yml does.
fn start_prometheus(targets: &[(std::net::SocketAddr, &str)]) -> Prometheus {
    let labelled: Vec<_> = targets
        .iter()
        .map(|(addr, service)| (*addr, vec![("service", *service)]))
        .collect();
    start_prometheus_labelled(&labelled)
}

/// Scrapes each target with its own target labels, every second, with the
/// recording rules loaded.
fn start_prometheus_labelled(targets: &[(std::net::SocketAddr, Vec<(&str, &str)>)]) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
         scrape_configs:\n  - job_name: otel-sidecar\n    static_configs:\n",
        repo("monitoring/prometheus/rules/slo.yml").display()
    );
    for (target, labels) in targets {
        config += &format!("      - targets: [\"{target}\"]\n        labels:\n");
        for (name, value) in labels {
            config += &format!("          {name}: {value}\n");
        }
    }
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let child = Command::new(crate::tools::require("prometheus"))
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts");
    Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

async fn query(prometheus: &Prometheus, promql: &str) -> Vec<serde_json::Value> {
    let url = format!(
        "{}/api/v1/query?query={}",
        prometheus.url,
        urlencode(promql)
    );
    let Ok(response) = client().request(get(url)).await else {
        return Vec::new();
    };
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    json["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Two sidecars, as in the agent topology: a quarter of one side's requests
/// fail, none of the other's, and each side's records say so on their own.
#[tokio::test]
async fn real_prometheus_scrapes_both_sidecars_and_evaluates_the_rules_per_side() {
    let upstream = TestUpstream::start(|req| async move {
        let status = if req.uri().path() == "/fail" {
            503
        } else {
            200
        };
        Response::builder()
            .status(status)
            .body(full(Bytes::from_static(b"{}")))
            .unwrap()
    })
    .await;
    let agent_side = start_sidecar(test_config(&upstream.url())).await;
    let model_side = start_sidecar(test_config(&upstream.url())).await;
    let prometheus = start_prometheus(&[
        (agent_side.admin_addr(), "agent-api"),
        (model_side.admin_addr(), "ollama"),
    ]);
    let traffic = [
        (agent_side.proxy_addr(), "/api/tags"),
        (agent_side.proxy_addr(), "/api/tags"),
        (agent_side.proxy_addr(), "/api/tags"),
        (agent_side.proxy_addr(), "/fail"),
        (model_side.proxy_addr(), "/api/tags"),
        (model_side.proxy_addr(), "/api/tags"),
    ];
    let client = client();
    let expected = [
        "slo:error_rate:5m",
        "slo:availability:5m",
        "handler:http_request_duration_seconds:p95_5m",
        "slo:sli_error:ratio_rate1h",
    ];
    let both: BTreeSet<String> = ["agent-api".to_owned(), "ollama".to_owned()].into();
    let mut found = Vec::new();
    // Bounded: at most 60 rounds of traffic and queries (about 30 s).
    for _ in 0..60 {
        for (addr, path) in traffic {
            send(&client, get(format!("http://{addr}{path}"))).await;
        }
        found.clear();
        for record in expected {
            if services(&query(&prometheus, record).await) == both {
                found.push(record);
            }
        }
        if found.len() == expected.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(found, expected, "recording rules without a result per side");
    let error_rate = |service: &'static str| {
        let prometheus = &prometheus;
        async move {
            let promql = format!("slo:error_rate:5m{{service=\"{service}\"}}");
            let result = query(prometheus, &promql).await;
            let value: f64 = result[0]["value"][1].as_str().unwrap().parse().unwrap();
            value
        }
    };
    let agent = error_rate("agent-api").await;
    assert!(
        (0.1..=0.4).contains(&agent),
        "a quarter of the agent side's requests fail: {agent}"
    );
    assert_eq!(error_rate("ollama").await, 0.0, "none of the model side's");
    let targets = query(&prometheus, "up{job=\"otel-sidecar\"}").await;
    assert_eq!(services(&targets), both);
    assert!(targets.iter().all(|t| t["value"][1] == "1"), "{targets:?}");
    agent_side.stop().await;
    model_side.stop().await;
}

/// The `service` labels of a query's result.
fn services(result: &[serde_json::Value]) -> BTreeSet<String> {
    result
        .iter()
        .filter_map(|r| r["metric"]["service"].as_str().map(str::to_owned))
        .collect()
}

/// slis.yaml describes the rules: every record and alert it names exists.
#[test]
fn slis_yaml_names_only_records_and_alerts_of_the_rules() {
    let rules = read("monitoring/prometheus/rules/slo.yml");
    let records = recorded(&rules);
    let alerts: BTreeSet<String> = alerts(&rules).into_iter().map(|a| a.name).collect();
    let slis = read("monitoring/slo/slis.yaml");
    let mut named = 0;
    for line in slis.lines().map(str::trim) {
        if let Some(record) = line.strip_prefix("recorded_as: ") {
            assert!(records.contains(record), "{record} is not recorded");
            named += 1;
        } else if let Some(family) = line.strip_prefix("bad_events_recorded_as: ") {
            let (prefix, windows) = family.trim_end_matches('}').split_once('{').unwrap();
            for window in windows.split(',') {
                let record = format!("{prefix}{window}");
                assert!(records.contains(&record), "{record} is not recorded");
                named += 1;
            }
        } else if let Some(list) = line.strip_prefix("alerts: [") {
            for alert in list.trim_end_matches(']').split(", ") {
                assert!(alerts.contains(alert), "{alert} is not an alert");
                named += 1;
            }
        }
    }
    assert!(named >= 30, "{named}");
}
