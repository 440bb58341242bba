//! Configuration: every shipped file parses, every invalid fixture fails with
//! its expected located message, interpolation and overrides work, and the
//! binary exits 2 naming file, line, column and key.

use std::path::{Path, PathBuf};
use std::process::Command;

use otel_sidecar::config::{load_file, load_str, OtlpProtocol, Propagator, Sampler};

use crate::support::repo;

const BIN: &str = env!("CARGO_BIN_EXE_otel-sidecar");

fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            toml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

#[test]
fn every_shipped_config_parses() {
    let mut files = vec![repo("sidecar.toml")];
    toml_files(&repo("examples"), &mut files);
    toml_files(&repo("bench"), &mut files);
    toml_files(&repo("monitoring"), &mut files);
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        // Variables the examples reference get harmless values.
        let lookup = |name: &str| match name {
            "UPSTREAM_URL" => Some("http://127.0.0.1:18080".to_owned()),
            "LISTEN_ADDR" => Some("127.0.0.1:18099".to_owned()),
            _ => None,
        };
        if let Err(e) = load_str(&text, &file.display().to_string(), lookup) {
            panic!("{e}");
        }
    }
}

#[test]
fn shipped_default_points_at_local_ollama() {
    let config = load_file(&repo("sidecar.toml")).unwrap();
    assert_eq!(config.upstream.url.to_string(), "http://127.0.0.1:11434");
    assert_eq!(config.listener.address.to_string(), "0.0.0.0:8080");
    assert_eq!(config.admin.address.to_string(), "127.0.0.1:9090");
}

#[test]
fn invalid_fixtures_fail_with_located_messages() {
    let mut files = Vec::new();
    toml_files(&repo("tests/fixtures/invalid"), &mut files);
    assert!(files.len() >= 15, "fixtures missing");
    let mut mismatches = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .expect("first line: # expect: ...");
        let name = file.display().to_string();
        match load_str(&text, &name, |_| None) {
            Ok(_) => panic!("{name} was accepted"),
            Err(e) => {
                let shown = e.to_string();
                if !shown.starts_with(&name) || !shown.contains(expect) {
                    mismatches.push(format!(
                        "{name}:\n  expected {expect:?}\n  got      {shown:?}"
                    ));
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn variables_are_interpolated_in_string_values() {
    let text = r#"
[upstream]
url = "http://${OLLAMA_HOST}:${OLLAMA_PORT:-11434}/v"
[service]
name = "${SERVICE:-fallback-name}"
environment = "${ENVIRONMENT}"
[admin]
token = "${ADMIN_TOKEN}"
[tracing.otlp]
headers = { "x-api-key" = "${OTLP_KEY}" }
"#;
    let lookup = |name: &str| {
        let value = match name {
            "OLLAMA_HOST" => "ollama.internal",
            "ENVIRONMENT" => "staging",
            "ADMIN_TOKEN" => "t0ken",
            "OTLP_KEY" => "k3y",
            _ => return None,
        };
        Some(value.to_owned())
    };
    let config = load_str(text, "inline.toml", lookup).unwrap();
    assert_eq!(
        config.upstream.url.to_string(),
        "http://ollama.internal:11434/v"
    );
    assert_eq!(config.service.name, "fallback-name");
    assert_eq!(config.service.environment, "staging");
    assert_eq!(config.admin.token.unwrap().expose(), "t0ken");
    assert_eq!(config.tracing.otlp.headers["x-api-key"].expose(), "k3y");
}

#[test]
fn standard_environment_variables_win_over_the_file() {
    let text = "[service]\nname = \"from-file\"\n[tracing]\nsampler = \"always_on\"\n";
    let lookup = |name: &str| {
        let value = match name {
            "OTEL_SERVICE_NAME" => "from-env",
            "OTEL_RESOURCE_ATTRIBUTES" => "k8s.pod.name=pod-1,team=llm%20ops",
            "OTEL_EXPORTER_OTLP_ENDPOINT" => "http://collector:4318",
            "OTEL_EXPORTER_OTLP_PROTOCOL" => "http/protobuf",
            "OTEL_EXPORTER_OTLP_HEADERS" => "authorization=Bearer%20abc",
            "OTEL_TRACES_SAMPLER" => "traceidratio",
            "OTEL_TRACES_SAMPLER_ARG" => "0.25",
            "OTEL_SDK_DISABLED" => "true",
            "SENTRY_DSN" => "https://key@sentry.example.com/7",
            "SENTRY_ENVIRONMENT" => "canary",
            "SENTRY_RELEASE" => "v9",
            _ => return None,
        };
        Some(value.to_owned())
    };
    let c = load_str(text, "inline.toml", lookup).unwrap();
    assert_eq!(c.service.name, "from-env");
    assert_eq!(c.service.resource_attributes["team"], "llm ops");
    assert_eq!(c.otlp.endpoint, "http://collector:4318");
    assert_eq!(c.otlp.protocol, OtlpProtocol::HttpProtobuf);
    assert_eq!(c.otlp.headers["authorization"].expose(), "Bearer abc");
    assert_eq!(c.tracing.sampler, Sampler::Traceidratio);
    assert_eq!(c.tracing.ratio, 0.25);
    assert!(!c.tracing.enabled);
    assert_eq!(
        c.sentry.dsn.expose(),
        Some("https://key@sentry.example.com/7")
    );
    assert_eq!(c.sentry.environment.as_deref(), Some("canary"));
    assert_eq!(c.sentry.release.as_deref(), Some("v9"));

    let bad = load_str("", "inline.toml", |n| {
        (n == "OTEL_TRACES_SAMPLER_ARG").then(|| "half".to_owned())
    });
    assert_eq!(
        bad.unwrap_err().to_string(),
        "environment variable OTEL_TRACES_SAMPLER_ARG: \"half\" is not a number"
    );
}

#[test]
fn otel_propagators_chooses_the_formats_and_names_an_unknown_one() {
    let text = "[tracing]\npropagators = [\"b3\"]\n";
    let with = |value: &'static str| {
        load_str(text, "inline.toml", move |n| {
            (n == "OTEL_PROPAGATORS").then(|| value.to_owned())
        })
    };
    let file = load_str(text, "inline.toml", |_| None).unwrap();
    assert_eq!(file.tracing.propagators, [Propagator::B3]);
    assert_eq!(
        with("b3multi, TraceContext,baggage")
            .unwrap()
            .tracing
            .propagators,
        [
            Propagator::B3multi,
            Propagator::Tracecontext,
            Propagator::Baggage
        ]
    );
    assert!(with("none").unwrap().tracing.propagators.is_empty());
    let error = with("tracecontext,jaeger").unwrap_err();
    assert_eq!(
        error.to_string(),
        "environment variable OTEL_PROPAGATORS: unknown value \"jaeger\": use tracecontext, baggage, b3, b3multi, none"
    );
    assert_eq!(error.variable, Some("OTEL_PROPAGATORS"));
    let default = load_str("", "inline.toml", |_| None).unwrap();
    assert_eq!(
        default.tracing.propagators,
        [Propagator::Tracecontext, Propagator::Baggage]
    );
    assert!(!default.tracing.server_timing, "off by default");
}

#[test]
fn an_invalid_environment_value_names_the_variable_not_the_file() {
    // Each variable parses, so the file's line of the key it overrides would
    // be the natural (and wrong) place to point: validation names the variable.
    let text = "[tracing]\nratio = 0.5\n[tracing.otlp]\nendpoint = \"http://collector:4317\"\n";
    for (variable, value, expect) in [
        (
            "OTEL_TRACES_SAMPLER_ARG",
            "1.5",
            "environment variable OTEL_TRACES_SAMPLER_ARG: key `tracing.ratio`: must be between 0 and 1, got 1.5",
        ),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "collector:4317",
            "environment variable OTEL_EXPORTER_OTLP_ENDPOINT: key `otlp.endpoint`: \"collector:4317\" is not an http(s) URL",
        ),
    ] {
        let error = load_str(text, "inline.toml", |n| {
            (n == variable).then(|| value.to_owned())
        })
        .unwrap_err();
        assert_eq!(error.to_string(), expect);
        assert_eq!(error.variable, Some(variable));
        assert_eq!(error.position, None, "no line of the file is at fault");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sidecar.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config", path.to_str().unwrap()])
        .env("OTEL_TRACES_SAMPLER_ARG", "2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("environment variable OTEL_TRACES_SAMPLER_ARG: key `tracing.ratio`")
            && !stderr.contains("sidecar.toml"),
        "{stderr}"
    );
}

#[test]
fn check_says_where_every_value_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("origins.toml");
    std::fs::write(
        &path,
        "[listener]\naddress = \":8080\"\n\
         [upstream]\nurl = \"${UPSTREAM_URL}\"\n\
         [service]\nname = \"from-file\"\nenvironment = \"${DEPLOY_ENV:-staging}\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config", path.to_str().unwrap()])
        .env("UPSTREAM_URL", "http://agent:8000")
        .env("OTEL_SERVICE_NAME", "from-env")
        .env_remove("DEPLOY_ENV")
        .env_remove("OTEL_TRACES_SAMPLER_ARG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let file = path.display();
    for line in [
        format!("address = \"0.0.0.0:8080\"  # {file}:2"),
        format!("url = \"http://agent:8000\"  # {file}:4 via ${{UPSTREAM_URL}}"),
        format!("name = \"from-env\"  # $OTEL_SERVICE_NAME (over {file}:6)"),
        format!("environment = \"staging\"  # {file}:7 via ${{DEPLOY_ENV}} (unset: default)"),
        "drain_timeout = \"30s\"  # default".to_owned(),
        "shutdown_delay = \"5s\"  # default".to_owned(),
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?} in:\n{stdout}"
        );
    }
    // Every value line says where it came from.
    let unexplained: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" = ") && !l.starts_with('#') && !l.contains("  # "))
        .collect();
    assert!(unexplained.is_empty(), "{unexplained:#?}");
}

#[test]
fn addresses_are_written_as_operators_write_them() {
    for (written, effective) in [
        (":8080", "0.0.0.0:8080"),
        ("localhost:9901", "127.0.0.1:9901"),
        ("[::1]:9901", "[::1]:9901"),
        ("0.0.0.0:8080", "0.0.0.0:8080"),
    ] {
        let text =
            format!("[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"{written}\"\n");
        let config = load_str(&text, "inline.toml", |_| None).unwrap();
        assert_eq!(config.admin.address.to_string(), effective, "{written}");
    }
}

fn run_bin(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("SIDECAR_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn binary_exits_2_naming_file_line_column_and_key() {
    for (fixture, expect) in [
        ("bad_toml.toml", "bad_toml.toml:2:10"),
        (
            "unknown_key.toml",
            "unknown_key.toml:3:1: key `listener.adress`",
        ),
        (
            "bad_url_scheme.toml",
            "bad_url_scheme.toml:3:7: key `upstream.url`",
        ),
    ] {
        let path = repo("tests/fixtures/invalid").join(fixture);
        for command in [
            vec!["check", "--config"],
            vec!["run", "--config"],
            vec!["--config"],
        ] {
            let mut args = command.clone();
            args.push(path.to_str().unwrap());
            let (code, _, stderr) = run_bin(&args);
            assert_eq!(code, 2, "{args:?}: {stderr}");
            assert!(stderr.contains(expect), "{args:?}: {stderr}");
        }
    }
    let (code, _, stderr) = run_bin(&["--no-such-flag"]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn config_path_comes_from_the_environment_when_not_given() {
    let path = repo("tests/fixtures/invalid/bad_url_scheme.toml");
    let out = Command::new(BIN)
        .arg("check")
        .env("SIDECAR_CONFIG", &path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad_url_scheme.toml:3:7"));
}

#[test]
fn check_prints_effective_settings_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.toml");
    std::fs::write(
        &path,
        r#"
[admin]
token = "admin-token-value"
[tracing.otlp]
headers = { "x-api-key" = "otlp-key-value" }
[sentry]
dsn = "https://publickeyvalue@o1.ingest.example.com/42"
"#,
    )
    .unwrap();
    let (code, stdout, stderr) = run_bin(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    for secret in ["admin-token-value", "otlp-key-value", "publickeyvalue"] {
        assert!(!stdout.contains(secret), "{secret} printed:\n{stdout}");
    }
    assert!(
        stdout.contains("https://****@o1.ingest.example.com/42"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[upstream]") && stdout.contains("connect_timeout = \"2s\""),
        "{stdout}"
    );
    // What check prints is itself a valid configuration.
    let printed = stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    load_str(&printed, "printed.toml", |_| None).unwrap();
}

#[test]
fn the_otlp_environment_general_and_per_signal() {
    let text = "[tracing.otlp]\nendpoint = \"http://from-file:4317\"\n";
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    // The general variable beats the file, a per-signal variable beats both.
    let c = load_str(
        text,
        "inline.toml",
        env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://general:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "http://logs:4318/v1/logs",
            ),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-tenant=a"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "50"),
            ("OTEL_BLRP_SCHEDULE_DELAY", "250"),
            ("OTEL_TRACES_EXPORTER", "otlp,console"),
            ("OTEL_METRICS_EXPORTER", "prometheus,otlp"),
            ("OTEL_LOGS_EXPORTER", "none"),
            ("OTEL_PROPAGATORS", "b3,tracecontext"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "15000"),
            ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta"),
        ]),
    )
    .unwrap();
    use otel_sidecar::config::{
        LogsExporter, MetricsExporter, Propagator, Signal, Temporality, TraceExporter,
    };
    let traces = c.otlp.target(Signal::Traces, &c.tracing.otlp);
    assert_eq!(traces.url, "http://general:4318/v1/traces");
    assert_eq!(traces.timeout, std::time::Duration::from_millis(2500));
    assert_eq!(traces.compression, otel_sidecar::config::Compression::Gzip);
    let logs = c.otlp.target(Signal::Logs, &c.logging.otlp);
    assert_eq!(logs.url, "http://logs:4318/v1/logs");
    let metrics = c.otlp.target(Signal::Metrics, &c.metrics.otlp);
    assert_eq!(metrics.headers["x-tenant"].expose(), "a");
    assert!(!traces.headers.contains_key("x-tenant"));
    assert_eq!(c.tracing.otlp.max_queue_size, 100);
    assert_eq!(c.tracing.otlp.max_export_batch_size, 50);
    assert_eq!(
        c.logging.otlp.schedule_delay,
        std::time::Duration::from_millis(250)
    );
    assert_eq!(
        c.tracing.exporters,
        vec![TraceExporter::Otlp, TraceExporter::Console]
    );
    assert_eq!(
        c.metrics.exporters,
        vec![MetricsExporter::Prometheus, MetricsExporter::Otlp]
    );
    assert_eq!(c.logging.exporters, Vec::<LogsExporter>::new());
    assert_eq!(
        c.tracing.propagators,
        vec![Propagator::B3, Propagator::Tracecontext]
    );
    assert_eq!(c.metrics.export_interval.as_secs(), 15);
    assert_eq!(c.metrics.temporality, Temporality::Delta);

    // OTEL_SERVICE_NAME beats service.name in OTEL_RESOURCE_ATTRIBUTES,
    // which beats the file; service.name never lands among the extra
    // resource attributes.
    let named = |pairs: &'static [(&'static str, &'static str)]| {
        load_str("[service]\nname = \"file\"\n", "inline.toml", env(pairs))
            .unwrap()
            .service
    };
    let s = named(&[
        ("OTEL_RESOURCE_ATTRIBUTES", "service.name=attrs,team=llm"),
        ("OTEL_SERVICE_NAME", "variable"),
    ]);
    assert_eq!(s.name, "variable");
    assert!(!s.resource_attributes.contains_key("service.name"));
    assert_eq!(s.resource_attributes["team"], "llm");
    assert_eq!(
        named(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=attrs")]).name,
        "attrs"
    );

    // An unusable value names its variable.
    for (variable, value) in [
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd"),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json"),
        ("OTEL_BLRP_MAX_QUEUE_SIZE", "0"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
        ("OTEL_PROPAGATORS", "jaeger"),
        ("OTEL_METRICS_EXPORTER", "statsd"),
    ] {
        let error = load_str("", "inline.toml", |n| {
            (n == variable).then(|| value.to_owned())
        })
        .unwrap_err();
        assert_eq!(error.variable, Some(variable), "{error}");
    }
}
