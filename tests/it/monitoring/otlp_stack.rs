//! The shipped stack carries every signal over OTLP: both sidecars send
//! spans and log records to the collector (their shared `[otlp]` table), the
//! collector passes each signal to its backend (Tempo, Loki's OTLP endpoint,
//! Prometheus' OTLP receiver), Loki keeps the per-request ids as structured
//! metadata, the file-based alternative (Grafana Alloy) gives Loki the same
//! names, and Grafana's queries and trace links use only names that both
//! ways produce.
//!
//! No collector, Loki, Alloy or Grafana program can be had on this machine
//! (none is packaged for Debian, PyPI, npm or crates.io, and nothing else is
//! reachable), so the collector's and Alloy's configs are not validated by
//! their programs: these tests read each file as its program would and check
//! the files against one another and against the sidecar's own loader.

use std::collections::BTreeSet;

use serde_json::Value;

use otel_sidecar::config::{
    load_str, Config, LogsExporter, MetricsExporter, OtlpProtocol, Signal, TraceExporter,
};

use crate::support::{read, repo};

/// A YAML file of monitoring/ as JSON, read by PyYAML as kubernetes.rs reads
/// rendered manifests (the repository has no YAML parser of its own).
fn yaml(path: &str) -> Value {
    let script = "import json, sys, yaml\n\
                  json.dump(yaml.safe_load(sys.stdin), sys.stdout, default=str)";
    let text = read(&format!("monitoring/{path}"));
    let json = crate::tools::python_filter(&["yaml"], script, &text)
        .unwrap_or_else(|e| panic!("monitoring/{path} is not YAML: {e}"));
    serde_json::from_str(&json).unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn text(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
}

/// The port of `host:port` (a listen address or a gRPC endpoint).
fn port_of(endpoint: &Value) -> u16 {
    let (_, port) = text(endpoint).rsplit_once(':').unwrap();
    port.parse().unwrap()
}

/// The compose service running `image` (whatever the tag), and its tag.
fn service_of_image<'a>(compose: &'a Value, image: &str) -> (&'a str, &'a Value, &'a str) {
    let found = compose["services"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(name, service)| {
            let (repository, tag) = service["image"].as_str()?.split_once(':')?;
            (repository == image).then(|| (name.as_str(), service, tag.split('@').next().unwrap()))
        })
        .collect::<Vec<_>>();
    assert_eq!(found.len(), 1, "one service runs {image}");
    found[0]
}

/// The major version of an image tag (`v3.14.0`, `3.7.7`).
fn major(tag: &str) -> u32 {
    let version = tag.trim_start_matches('v');
    version.split('.').next().unwrap().parse().unwrap()
}

/// The sidecars of docker-compose.yml, each by service name with its config
/// as the binary loads it from the file compose mounts, `env` standing in for
/// the container's environment.
fn sidecars(compose: &Value, env: &dyn Fn(&str) -> Option<String>) -> Vec<(String, Config)> {
    let mut found = Vec::new();
    for (name, service) in compose["services"].as_object().unwrap() {
        let Some(path) = service["environment"]["SIDECAR_CONFIG"].as_str() else {
            continue;
        };
        let mounted = strings(&service["volumes"])
            .into_iter()
            .find_map(|v| {
                let (source, target) = v.strip_prefix("./")?.split_once(':')?;
                target.starts_with(path).then(|| source.to_owned())
            })
            .unwrap_or_else(|| panic!("{name}: SIDECAR_CONFIG {path} is not mounted"));
        let config = load_str(&read(&format!("monitoring/{mounted}")), &mounted, env)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        found.push((name.clone(), config));
    }
    assert_eq!(found.len(), 2, "both sidecars of the agent topology");
    found
}

#[test]
fn the_collector_receives_every_signal_and_sends_each_to_its_backend() {
    let collector = yaml("otel-collector/config.yaml");
    let compose = yaml("docker-compose.yml");

    let protocols = &collector["receivers"]["otlp"]["protocols"];
    assert_eq!(port_of(&protocols["grpc"]["endpoint"]), 4317);
    assert_eq!(port_of(&protocols["http"]["endpoint"]), 4318);

    let pipelines = collector["service"]["pipelines"].as_object().unwrap();
    let signals: BTreeSet<&str> = pipelines.keys().map(String::as_str).collect();
    assert_eq!(signals, ["logs", "metrics", "traces"].into());
    let mut used = BTreeSet::new();
    for (signal, pipeline) in pipelines {
        assert_eq!(strings(&pipeline["receivers"]), ["otlp"], "{signal}");
        let processors = strings(&pipeline["processors"]);
        assert_eq!(
            processors.first().map(String::as_str),
            Some("memory_limiter"),
            "{signal}: refusing data before the collector runs out of memory comes first"
        );
        assert!(processors.iter().any(|p| p == "batch"), "{signal}");
        assert_eq!(
            pipeline["exporters"].as_array().unwrap().len(),
            1,
            "{signal}: one backend"
        );
        for kind in ["receivers", "processors", "exporters"] {
            for name in strings(&pipeline[kind]) {
                assert!(
                    collector[kind].get(&name).is_some(),
                    "{signal} uses {kind} {name}, which is not defined"
                );
                used.insert((kind, name));
            }
        }
    }
    // The component types of contrib 0.162.0, the pinned image: a misspelt
    // type stops the collector at start. `otlp_grpc` and `otlp_http` are the
    // exporters' names since 0.144 (`otlp` and `otlphttp` are deprecated
    // aliases).
    let known: [(&str, &[&str]); 4] = [
        ("receivers", &["otlp"]),
        ("processors", &["memory_limiter", "batch"]),
        ("exporters", &["otlp_grpc", "otlp_http"]),
        ("extensions", &["health_check"]),
    ];
    for (kind, types) in known {
        for name in collector[kind].as_object().unwrap().keys() {
            let kind_of = name.split('/').next().unwrap();
            assert!(types.contains(&kind_of), "{kind} {name}: unknown type");
            if kind != "extensions" {
                assert!(
                    used.contains(&(kind, name.clone())),
                    "{kind} {name} is defined but in no pipeline"
                );
            }
        }
    }

    let exporter = |signal: &str| {
        let name = strings(&pipelines[signal]["exporters"]).remove(0);
        let kind = name.split('/').next().unwrap().to_owned();
        (kind, collector["exporters"][&name].clone())
    };

    // Spans: to Tempo over OTLP/gRPC, on the port tempo.yaml receives on.
    let (kind, tempo) = exporter("traces");
    assert_eq!(kind, "otlp_grpc");
    let (tempo_service, _, _) = service_of_image(&compose, "grafana/tempo");
    let (host, _) = text(&tempo["endpoint"]).split_once(':').unwrap();
    assert_eq!(host, tempo_service);
    let tempo_config = yaml("tempo/tempo.yaml");
    assert_eq!(
        port_of(&tempo["endpoint"]),
        port_of(&tempo_config["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"])
    );

    // Log records: to Loki 3's OTLP endpoint. The exporter appends /v1/logs
    // to its base URL: POST /otlp/v1/logs.
    let (kind, loki) = exporter("logs");
    assert_eq!(kind, "otlp_http");
    let (loki_service, _, _) = service_of_image(&compose, "grafana/loki");
    let url: http::Uri = text(&loki["endpoint"]).parse().unwrap();
    assert_eq!(url.host(), Some(loki_service));
    let loki_config = yaml("loki/loki-config.yaml");
    assert_eq!(
        url.port_u16().map(u64::from),
        loki_config["server"]["http_listen_port"].as_u64()
    );
    assert_eq!(url.path(), "/otlp");

    // Metrics: to Prometheus' OTLP receiver (v3, with the flag that turns it
    // on). The exporter appends /v1/metrics: POST /api/v1/otlp/v1/metrics.
    let (kind, prometheus) = exporter("metrics");
    assert_eq!(kind, "otlp_http");
    let (prometheus_service, service, tag) = service_of_image(&compose, "prom/prometheus");
    assert!(
        major(tag) >= 3,
        "--web.enable-otlp-receiver is Prometheus 3's"
    );
    let flags = strings(&service["command"]);
    assert!(flags.iter().any(|f| f == "--web.enable-otlp-receiver"));
    assert!(
        !flags.iter().any(|f| f.starts_with("--web.listen-address")),
        "Prometheus listens on its default :9090"
    );
    let url: http::Uri = text(&prometheus["endpoint"]).parse().unwrap();
    assert_eq!(url.host(), Some(prometheus_service));
    assert_eq!(url.port_u16(), Some(9090));
    assert_eq!(url.path(), "/api/v1/otlp");
}

#[test]
fn both_sidecars_send_spans_and_log_records_to_the_collector_and_are_scraped_for_metrics() {
    let compose = yaml("docker-compose.yml");
    let collector = yaml("otel-collector/config.yaml");
    let (collector_service, _, _) =
        service_of_image(&compose, "otel/opentelemetry-collector-contrib");
    let grpc = port_of(&collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]);
    for (name, config) in sidecars(&compose, &|_| None) {
        assert!(
            config.tracing.exporters.contains(&TraceExporter::Otlp),
            "{name}"
        );
        assert!(
            config.logging.exporters.contains(&LogsExporter::Otlp),
            "{name}"
        );
        assert!(
            config.logging.exporters.contains(&LogsExporter::Console),
            "{name}: `docker logs` shows nothing without the console exporter"
        );
        assert_eq!(
            config.metrics.exporters,
            [MetricsExporter::Prometheus],
            "{name}: Prometheus scrapes /metrics, whose names the rules and the dashboard \
             query; OTLP metrics too would store everything twice under other names"
        );
        for (signal, own) in [
            (Signal::Traces, &config.tracing.otlp),
            (Signal::Logs, &config.logging.otlp),
        ] {
            assert_eq!(
                own.endpoint, None,
                "{name}: {signal:?} overrides the shared [otlp] endpoint"
            );
            let target = config.otlp.target(signal, own);
            assert_eq!(target.protocol, OtlpProtocol::Grpc, "{name}: {signal:?}");
            let url: http::Uri = target.url.parse().unwrap();
            assert_eq!(url.host(), Some(collector_service), "{name}: {signal:?}");
            assert_eq!(url.port_u16(), Some(grpc), "{name}: {signal:?}");
        }
        // Compose passes OTEL_LOGS_EXPORTER through, empty (the file's
        // exporters) unless set: the switch to the file-based alternative.
        assert_eq!(
            compose["services"][&name]["environment"]["OTEL_LOGS_EXPORTER"],
            "${OTEL_LOGS_EXPORTER:-}",
            "{name}"
        );
    }
    let console = |name: &str| (name == "OTEL_LOGS_EXPORTER").then(|| "console".to_owned());
    for (name, config) in sidecars(&compose, &console) {
        assert_eq!(
            config.logging.exporters,
            [LogsExporter::Console],
            "{name}: OTEL_LOGS_EXPORTER=console leaves the lines on stdout only"
        );
        assert!(config.tracing.exporters.contains(&TraceExporter::Otlp));
    }
}

/// Loki's labels for OTLP records: the resource attributes it indexes, named
/// as Loki names them (dots become underscores).
fn otlp_labels(loki: &Value) -> BTreeSet<String> {
    let resource = &loki["limits_config"]["otlp_config"]["resource_attributes"];
    assert_eq!(
        resource["ignore_defaults"], true,
        "Loki's default list would index more attributes than these"
    );
    resource["attributes_config"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rule| rule["action"] == "index_label")
        .flat_map(|rule| strings(&rule["attributes"]))
        .map(|attribute| attribute.replace('.', "_"))
        .collect()
}

/// Per-request values: one stream each as labels.
const REQUEST_IDS: [&str; 3] = ["trace_id", "span_id", "correlation_id"];

#[test]
fn loki_takes_otlp_with_the_request_ids_as_structured_metadata_and_few_labels() {
    let loki = yaml("loki/loki-config.yaml");
    let limits = &loki["limits_config"];
    assert_eq!(
        limits["allow_structured_metadata"], true,
        "Loki refuses OTLP pushes as malformed without it"
    );
    assert_eq!(limits["discover_log_levels"], true, "detected_level");
    let schemas = loki["schema_config"]["configs"].as_array().unwrap();
    let current = schemas.last().unwrap();
    assert_eq!(current["store"], "tsdb", "structured metadata needs TSDB");
    assert_eq!(current["schema"], "v13", "structured metadata needs v13");

    // Three labels, each with a handful of values in the stack.
    let labels = otlp_labels(&loki);
    assert_eq!(
        labels,
        [
            "deployment_environment_name",
            "service_name",
            "service_namespace"
        ]
        .map(str::to_owned)
        .into()
    );
    let otlp = &limits["otlp_config"];
    for scope in ["log_attributes", "scope_attributes"] {
        for rule in otlp[scope].as_array().into_iter().flatten() {
            assert_ne!(rule["action"], "index_label", "{scope}: {rule}");
        }
    }
    for id in REQUEST_IDS {
        assert!(
            !labels.contains(id),
            "{id} as a label: a stream per request"
        );
    }
    assert_ne!(
        otlp["severity_text_as_label"], true,
        "detected_level filters by severity without a stream per level"
    );

    let compose = yaml("docker-compose.yml");
    let (_, _, tag) = service_of_image(&compose, "grafana/loki");
    assert!(major(tag) >= 3, "OTLP ingestion is Loki 3's");
    // Promtail reached its end of life: no service runs it, and the stack
    // ships no config of it.
    for (name, service) in compose["services"].as_object().unwrap() {
        let image = text(&service["image"]);
        assert!(
            !name.contains("promtail") && !image.contains("promtail"),
            "{name}: {image}"
        );
    }
    assert!(!repo("monitoring/promtail").exists());
}

/// A block of an Alloy file: `name "label" { ... }`, its attributes as
/// written and its inner blocks.
#[derive(Debug)]
struct Block {
    name: String,
    label: Option<String>,
    attributes: Vec<(String, String)>,
    blocks: Vec<Block>,
}

impl Block {
    fn attribute(&self, key: &str) -> &str {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{} has no {key}", self.name))
    }

    fn inner(&self, name: &str) -> Vec<&Block> {
        self.blocks.iter().filter(|b| b.name == name).collect()
    }
}

/// A reader of Alloy's configuration syntax as far as config.alloy uses it:
/// `//` comments, blocks, `key = value` attributes (values kept as written),
/// strings with escapes. It fails on what Alloy would refuse to parse
/// there: an unclosed brace, bracket or string, a stray token.
struct Alloy<'a> {
    text: &'a [u8],
    at: usize,
}

impl Alloy<'_> {
    fn parse(text: &str) -> Vec<Block> {
        let mut parser = Alloy {
            text: text.as_bytes(),
            at: 0,
        };
        let (attributes, blocks) = parser.body(false);
        assert!(
            attributes.is_empty(),
            "top-level attributes: {attributes:?}"
        );
        blocks
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace() {
                self.at += 1;
            } else if self.text[self.at..].starts_with(b"//") {
                while self.peek().is_some_and(|c| c != b'\n') {
                    self.at += 1;
                }
            } else {
                break;
            }
        }
    }

    fn identifier(&mut self) -> String {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
        {
            self.at += 1;
        }
        assert!(
            self.at > start,
            "expected a name at byte {start}: {:?}",
            String::from_utf8_lossy(&self.text[start..(start + 20).min(self.text.len())])
        );
        String::from_utf8(self.text[start..self.at].to_vec()).unwrap()
    }

    /// A quoted string, as written (quotes included).
    fn string(&mut self) -> String {
        let start = self.at;
        self.at += 1;
        loop {
            match self.peek() {
                None | Some(b'\n') => panic!("unclosed string at byte {start}"),
                Some(b'\\') => self.at += 2,
                Some(b'"') => {
                    self.at += 1;
                    break;
                }
                Some(_) => self.at += 1,
            }
        }
        String::from_utf8(self.text[start..self.at].to_vec()).unwrap()
    }

    /// A value up to the end of its line, or across lines while a bracket
    /// is open.
    fn value(&mut self) -> String {
        let mut open = Vec::new();
        let mut value = String::new();
        loop {
            match self.peek() {
                None => {
                    assert!(open.is_empty(), "unclosed {open:?}");
                    break;
                }
                Some(b'"') => value += &self.string(),
                Some(b'\n') if open.is_empty() => break,
                Some(b'/') if self.text[self.at..].starts_with(b"//") => {
                    // A comment ends the line's text, not the value.
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.at += 1;
                    }
                }
                Some(c) => {
                    match c {
                        b'{' | b'[' | b'(' => open.push(c),
                        b'}' | b']' | b')' => {
                            let Some(opened) = open.pop() else { break };
                            let expected = match opened {
                                b'{' => b'}',
                                b'[' => b']',
                                _ => b')',
                            };
                            assert_eq!(c, expected, "mismatched bracket at byte {}", self.at);
                        }
                        _ => {}
                    }
                    value.push(c as char);
                    self.at += 1;
                }
            }
        }
        value.trim().to_owned()
    }

    /// Attributes and blocks up to the closing brace (or the end of the file).
    fn body(&mut self, braced: bool) -> (Vec<(String, String)>, Vec<Block>) {
        let mut attributes = Vec::new();
        let mut blocks = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                None => {
                    assert!(!braced, "unclosed block");
                    return (attributes, blocks);
                }
                Some(b'}') => {
                    assert!(braced, "stray closing brace at byte {}", self.at);
                    self.at += 1;
                    return (attributes, blocks);
                }
                _ => {}
            }
            let name = self.identifier();
            self.skip_space();
            if self.peek() == Some(b'=') {
                self.at += 1;
                self.skip_space();
                attributes.push((name, self.value()));
                continue;
            }
            let label = (self.peek() == Some(b'"')).then(|| unquote(&self.string()).to_owned());
            self.skip_space();
            assert_eq!(self.peek(), Some(b'{'), "{name}: expected a block");
            self.at += 1;
            let (inner_attributes, inner_blocks) = self.body(true);
            blocks.push(Block {
                name,
                label,
                attributes: inner_attributes,
                blocks: inner_blocks,
            });
        }
    }
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or_else(|| panic!("not a string: {value}"))
}

/// The items of a `[...]` or `{...}` value, split at its top-level commas.
fn items(value: &str) -> Vec<String> {
    let inner = &value[1..value.len() - 1];
    let (mut items, mut item, mut depth, mut quoted) = (Vec::new(), String::new(), 0, false);
    for c in inner.chars() {
        match c {
            '"' => quoted = !quoted,
            '{' | '[' if !quoted => depth += 1,
            '}' | ']' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                items.push(std::mem::take(&mut item));
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    items.push(item);
    items
        .into_iter()
        .map(|i| i.trim().to_owned())
        .filter(|i| !i.is_empty())
        .collect()
}

fn string_list(value: &str) -> Vec<String> {
    items(value).iter().map(|i| unquote(i).to_owned()).collect()
}

fn map_keys(value: &str) -> BTreeSet<String> {
    items(value)
        .iter()
        .map(|i| i.split_once('=').unwrap().0.trim().to_owned())
        .collect()
}

/// What each component config.alloy uses exports (Alloy v1.18.1's
/// reference): references to anything else do not resolve.
const ALLOY_COMPONENTS: [(&str, &[&str]); 5] = [
    ("discovery.docker", &["targets"]),
    ("discovery.relabel", &["output", "rules"]),
    ("loki.source.docker", &[]),
    ("loki.process", &["receiver"]),
    ("loki.write", &["receiver"]),
];

/// The component references of a value: dotted names outside strings.
fn references(value: &str) -> Vec<String> {
    let mut found = Vec::new();
    let (mut word, mut quoted) = (String::new(), false);
    for c in value.chars().chain(std::iter::once(' ')) {
        if c == '"' {
            quoted = !quoted;
        } else if !quoted && (c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            word.push(c);
            continue;
        }
        if word.matches('.').count() >= 2 {
            found.push(word.clone());
        }
        word.clear();
    }
    found
}

/// The file-based path's names in Loki: the labels its relabel rules set,
/// and the structured metadata its pipeline attaches.
fn file_names(blocks: &[Block]) -> (BTreeSet<String>, BTreeSet<String>) {
    let one = |name: &str| {
        let found: Vec<&Block> = blocks.iter().filter(|b| b.name == name).collect();
        assert_eq!(found.len(), 1, "one {name}");
        found[0]
    };
    let labels = one("discovery.relabel")
        .inner("rule")
        .iter()
        .map(|rule| unquote(rule.attribute("target_label")).to_owned())
        .collect();
    let metadata = one("loki.process")
        .inner("stage.structured_metadata")
        .iter()
        .flat_map(|stage| map_keys(stage.attribute("values")))
        .collect();
    (labels, metadata)
}

#[test]
fn the_file_based_alternative_gives_loki_what_the_otlp_path_gives_it() {
    let blocks = Alloy::parse(&read("monitoring/alloy/config.alloy"));
    let block = |name: &str| {
        let found: Vec<&Block> = blocks.iter().filter(|b| b.name == name).collect();
        assert_eq!(found.len(), 1, "one {name}");
        found[0]
    };
    // Every component is one Alloy has, with a label, and every reference
    // names a component of the file and something it exports.
    for b in &blocks {
        assert!(
            ALLOY_COMPONENTS.iter().any(|(name, _)| *name == b.name),
            "unknown component {}",
            b.name
        );
        assert!(b.label.is_some(), "{} has no label", b.name);
    }
    let mut values: Vec<&str> = Vec::new();
    let mut stack: Vec<&Block> = blocks.iter().collect();
    while let Some(b) = stack.pop() {
        values.extend(b.attributes.iter().map(|(_, v)| v.as_str()));
        stack.extend(&b.blocks);
    }
    for reference in values.iter().flat_map(|v| references(v)) {
        let resolves = blocks.iter().any(|b| {
            let exports = ALLOY_COMPONENTS
                .iter()
                .find(|(name, _)| *name == b.name)
                .unwrap()
                .1;
            let prefix = format!("{}.{}.", b.name, b.label.as_deref().unwrap());
            reference
                .strip_prefix(&prefix)
                .is_some_and(|export| exports.contains(&export))
        });
        assert!(resolves, "{reference} names nothing in the file");
    }
    // Containers -> pipeline -> Loki, with the discovered targets and the
    // relabel rules.
    let source = block("loki.source.docker");
    let process = block("loki.process");
    let wired = [
        (source, "targets", "discovery.docker."),
        (source, "relabel_rules", "discovery.relabel."),
        (source, "forward_to", "loki.process."),
        (process, "forward_to", "loki.write."),
    ];
    for (from, key, to) in wired {
        let named = references(from.attribute(key));
        assert!(
            !named.is_empty() && named.iter().all(|r| r.starts_with(to)),
            "{} {key}: {named:?}",
            from.name
        );
    }

    // Discovery keeps the containers with the label both sidecars carry, and
    // their value of it becomes `service_name`: the sidecar's service.name,
    // as with OTLP.
    let compose = yaml("docker-compose.yml");
    let filters = block("discovery.docker").inner("filter");
    assert_eq!(filters.len(), 1);
    assert_eq!(unquote(filters[0].attribute("name")), "label");
    let key = string_list(filters[0].attribute("values")).remove(0);
    for (name, config) in sidecars(&compose, &|_| None) {
        assert_eq!(
            compose["services"][&name]["labels"][&key], config.service.name,
            "{name}: the label Alloy discovers"
        );
    }
    let rules = block("discovery.relabel").inner("rule");
    let service_rule = rules
        .iter()
        .find(|r| unquote(r.attribute("target_label")) == "service_name")
        .expect("a rule sets service_name");
    let docker_label = format!(
        "__meta_docker_container_label_{}",
        key.replace(['.', '-'], "_")
    );
    assert_eq!(
        string_list(service_rule.attribute("source_labels")),
        [docker_label]
    );

    // The request ids: read from the JSON line, kept as structured metadata,
    // never labels.
    let extracted: BTreeSet<String> = process
        .inner("stage.json")
        .iter()
        .flat_map(|stage| map_keys(stage.attribute("expressions")))
        .collect();
    let (labels, metadata) = file_names(&blocks);
    for id in REQUEST_IDS {
        assert!(extracted.contains(id), "{id} is not read from the line");
        assert!(metadata.contains(id), "{id} is not structured metadata");
        assert!(
            !labels.contains(id),
            "{id} as a label: a stream per request"
        );
    }
    assert!(
        process.inner("stage.labels").is_empty(),
        "labels beyond service_name: {:?}",
        process.inner("stage.labels")
    );
    let timestamp = process.inner("stage.timestamp");
    assert_eq!(unquote(timestamp[0].attribute("source")), "timestamp");

    // Pushed to the stack's Loki.
    let endpoint = block("loki.write").inner("endpoint");
    let url: http::Uri = unquote(endpoint[0].attribute("url")).parse().unwrap();
    let (loki_service, _, _) = service_of_image(&compose, "grafana/loki");
    assert_eq!(url.host(), Some(loki_service));
    assert_eq!(
        url.port_u16().map(u64::from),
        yaml("loki/loki-config.yaml")["server"]["http_listen_port"].as_u64()
    );
    assert_eq!(url.path(), "/loki/api/v1/push");

    // Compose runs it only on request, with this file and the Docker socket.
    let (_, alloy, _) = service_of_image(&compose, "grafana/alloy");
    assert_eq!(strings(&alloy["profiles"]), ["file-logs"]);
    let volumes = strings(&alloy["volumes"]);
    let config = volumes
        .iter()
        .find_map(|v| v.strip_prefix("./alloy/config.alloy:"))
        .expect("config.alloy is mounted");
    let config = config.trim_end_matches(":ro");
    assert!(strings(&alloy["command"]).iter().any(|a| a == config));
    assert!(volumes.contains(&"/var/run/docker.sock:/var/run/docker.sock:ro".to_owned()));
}

/// A LogQL log query as far as the stack's queries go: the stream
/// selector's label names, the label filters' names (after `|`), the parser
/// stages.
#[derive(Debug, Default)]
struct LogQuery {
    selector: Vec<String>,
    filters: Vec<(String, String)>,
    parsers: Vec<String>,
}

impl LogQuery {
    fn parse(query: &str) -> Self {
        // The query's `|`-separated stages, quotes and braces respected.
        let (mut stages, mut stage, mut quoted, mut depth) = (Vec::new(), String::new(), false, 0);
        let mut escaped = false;
        for c in query.chars() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                '{' if !quoted => depth += 1,
                '}' if !quoted => depth -= 1,
                '|' if !quoted && depth == 0 => {
                    stages.push(std::mem::take(&mut stage));
                    continue;
                }
                _ => {}
            }
            stage.push(c);
        }
        stages.push(stage);
        let selector = stages.remove(0);
        let selector = selector
            .trim()
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .unwrap_or_else(|| panic!("no stream selector: {query}"));
        let mut parsed = LogQuery {
            selector: items(&format!("[{selector}]"))
                .iter()
                .map(|m| m.split(['=', '!', '~']).next().unwrap().trim().to_owned())
                .collect(),
            ..Self::default()
        };
        for stage in stages {
            let stage = stage.trim();
            if stage.starts_with(['=', '~']) {
                continue; // a line filter (`|=`, `|~`)
            }
            let name: String = stage
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let rest = stage[name.len()..].trim_start();
            if rest.starts_with(['=', '!', '>', '<']) {
                let value = rest.trim_start_matches(['=', '!', '~', '>', '<']).trim();
                parsed.filters.push((name, value.to_owned()));
            } else {
                parsed.parsers.push(name);
            }
        }
        assert!(!parsed.selector.is_empty(), "empty selector: {query}");
        parsed
    }
}

#[test]
fn grafana_queries_and_trace_links_use_only_names_both_log_paths_give_loki() {
    // Labels and structured metadata that logs carry whichever way they came.
    // Over OTLP Loki stores the record's trace context as trace_id and
    // span_id and each attribute (the sidecar's correlation_id among them)
    // as metadata; either way it adds detected_level (discover_log_levels).
    let loki = yaml("loki/loki-config.yaml");
    let otlp_metadata: BTreeSet<String> = REQUEST_IDS
        .iter()
        .chain(&["detected_level"])
        .map(|s| s.to_string())
        .collect();
    let (file_labels, mut file_metadata) =
        file_names(&Alloy::parse(&read("monitoring/alloy/config.alloy")));
    file_metadata.insert("detected_level".into());
    let labels: BTreeSet<String> = otlp_labels(&loki)
        .intersection(&file_labels)
        .cloned()
        .collect();
    let metadata: BTreeSet<String> = otlp_metadata
        .intersection(&file_metadata)
        .cloned()
        .collect();
    let check = |query: &str, origin: &str| {
        let parsed = LogQuery::parse(query);
        for label in &parsed.selector {
            assert!(
                labels.contains(label),
                "{origin}: {label} is not a label of both paths ({labels:?}): {query}"
            );
        }
        for (name, _) in &parsed.filters {
            assert!(
                labels.contains(name) || metadata.contains(name),
                "{origin}: {name} is in neither path's labels or metadata: {query}"
            );
        }
        assert!(
            parsed.parsers.is_empty(),
            "{origin}: an OTLP record's line is its message, not JSON: {query}"
        );
        parsed
    };

    let datasources = yaml("grafana/provisioning/datasources/datasources.yml");
    let of_type = |kind: &str| {
        datasources["datasources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} datasource"))
            .clone()
    };
    let (loki_source, tempo_source) = (of_type("loki"), of_type("tempo"));

    // Log line -> trace: the derived field reads trace_id by name.
    let link = loki_source["jsonData"]["derivedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["datasourceUid"] == tempo_source["uid"])
        .expect("a derived field opens the trace in Tempo");
    assert_eq!(
        link["matcherType"], "label",
        "an OTLP record's line has no trace_id to match: it is metadata"
    );
    let name = text(&link["matcherRegex"])
        .strip_prefix('^')
        .and_then(|r| r.strip_suffix('$'))
        .expect("anchored: Grafana matches it against every name (parent_trace_id, ...)");
    assert_eq!(name, "trace_id");
    assert!(metadata.contains(name));

    // Span -> its trace's lines.
    let to_logs = &tempo_source["jsonData"]["tracesToLogsV2"];
    assert_eq!(to_logs["datasourceUid"], loki_source["uid"]);
    let query = check(text(&to_logs["query"]), "tracesToLogsV2");
    assert!(
        query
            .filters
            .iter()
            .any(|(name, value)| name == "trace_id" && value == "\"$${__span.traceId}\""),
        "the span's trace, by its metadata: {query:?}"
    );

    // The dashboard's log panels.
    let dashboard: Value =
        serde_json::from_str(&read("monitoring/grafana/dashboards/otel-sidecar.json")).unwrap();
    let mut checked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let source = target["datasource"]["type"]
                .as_str()
                .or(panel["datasource"]["type"].as_str());
            if source == Some("loki") {
                let query = check(text(&target["expr"]), text(&panel["title"]));
                assert_eq!(query.selector, ["service_name"], "picked by side");
                checked += 1;
            }
        }
    }
    assert!(checked > 0, "the dashboard has no Loki query");
}
